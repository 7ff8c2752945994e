/**
 * The browser's persistent model store: bytes in Cache Storage ('cxr-models-v1'), metadata in IndexedDB via
 * idb-keyval. Both are injectable so Node tests can run it against fakes. Wrapped in LocalKeyModelStore
 * (app/lib/models/cache-keys.ts) so local-folder URLs can be cache keys.
 */
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';
import type { ModelStore, StoredModelFile } from '../../lib/models/model-cache';
import { LocalKeyModelStore } from '../../lib/models/cache-keys';

export const MODEL_CACHE_NAME = 'cxr-models-v1';

export interface CacheStorageModelStoreOptions {
  caches?: CacheStorage;
  cacheName?: string;
  /** idb-keyval store for metadata; default createStore('cxr-models', 'files'). */
  idbStore?: UseStore;
  storageManager?: { estimate(): Promise<StorageEstimate> };
}

/** Browser store: Cache Storage for bytes, IndexedDB (idb-keyval) for metadata. */
export class CacheStorageModelStore implements ModelStore {
  private readonly cachesApi: CacheStorage;
  private readonly cacheName: string;
  private readonly idb: UseStore;
  private readonly storage?: { estimate(): Promise<StorageEstimate> };

  constructor(opts: CacheStorageModelStoreOptions = {}) {
    const c = opts.caches ?? (globalThis as { caches?: CacheStorage }).caches;
    if (!c) throw new Error('Cache Storage is not available (needs a secure context)');
    this.cachesApi = c;
    this.cacheName = opts.cacheName ?? MODEL_CACHE_NAME;
    this.idb = opts.idbStore ?? createStore('cxr-models', 'files');
    this.storage = opts.storageManager ?? (globalThis as { navigator?: { storage?: { estimate(): Promise<StorageEstimate> } } }).navigator?.storage;
  }

  private open() {
    return this.cachesApi.open(this.cacheName);
  }

  async has(url: string, sha256: string) {
    const meta = await get<StoredModelFile>(url, this.idb);
    if (!meta || meta.sha256 !== sha256) return false;
    const cache = await this.open();
    return (await cache.match(url)) !== undefined;
  }

  async get(url: string) {
    const cache = await this.open();
    const res = await cache.match(url);
    if (!res) return null;
    return new Uint8Array(await res.arrayBuffer());
  }

  async put(bytes: Uint8Array, meta: StoredModelFile) {
    const cache = await this.open();
    const body = new Blob([bytes as Uint8Array<ArrayBuffer>]);
    await cache.put(meta.url, new Response(body, { headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.byteLength), 'X-Sha256': meta.sha256 } }));
    await set(meta.url, { ...meta }, this.idb);
  }

  async list() {
    const all = await entries<string, StoredModelFile>(this.idb);
    return all.map(([, v]) => v);
  }

  async delete(modelId: string) {
    const cache = await this.open();
    let n = 0;
    for (const m of await this.list()) {
      if (m.modelId !== modelId) continue;
      await cache.delete(m.url);
      await del(m.url, this.idb);
      n++;
    }
    return n;
  }

  async deleteUrl(url: string) {
    const cache = await this.open();
    await cache.delete(url);
    await del(url, this.idb);
  }

  async estimateQuota() {
    if (!this.storage?.estimate) return null;
    const e = await this.storage.estimate();
    return { usage: e.usage ?? 0, quota: e.quota ?? 0 };
  }
}

/** The app's model store (page and workers): Cache Storage under local-folder-aware keys. */
export function browserModelStore(): ModelStore {
  return new LocalKeyModelStore(new CacheStorageModelStore());
}
