/**
 * Persistent model storage: bytes in Cache Storage ('cxr-models-v1'), metadata in IndexedDB via idb-keyval.
 * Both are injectable so Node tests can run it against fakes; MemoryModelStore is a plain in-memory store.
 */
import { createStore, del, entries, get, set, type UseStore } from 'idb-keyval';
import type { Dtype } from './manifest-types';

export interface StoredModelFile {
  url: string;
  path: string;
  modelId: string;
  dtype: Dtype | string;
  bytes: number;
  sha256: string;
  /** ms since epoch */
  storedAt: number;
}

export interface QuotaEstimate {
  usage: number;
  quota: number;
}

export interface ModelStore {
  /** True when `url` is stored with exactly this sha256. */
  has(url: string, sha256: string): Promise<boolean>;
  get(url: string): Promise<Uint8Array | null>;
  put(bytes: Uint8Array, meta: StoredModelFile): Promise<void>;
  list(): Promise<StoredModelFile[]>;
  /** Delete every file of a model; returns how many were deleted. */
  delete(modelId: string): Promise<number>;
  deleteUrl(url: string): Promise<void>;
  estimateQuota(): Promise<QuotaEstimate | null>;
}

/** Total bytes per model id. */
export function summarizeByModel(files: StoredModelFile[]): { modelId: string; bytes: number; files: number; dtypes: string[] }[] {
  const m = new Map<string, { modelId: string; bytes: number; files: number; dtypes: Set<string> }>();
  for (const f of files) {
    const e = m.get(f.modelId) ?? { modelId: f.modelId, bytes: 0, files: 0, dtypes: new Set<string>() };
    e.bytes += f.bytes;
    e.files += 1;
    e.dtypes.add(String(f.dtype));
    m.set(f.modelId, e);
  }
  return [...m.values()].map((e) => ({ ...e, dtypes: [...e.dtypes].sort() })).sort((a, b) => a.modelId.localeCompare(b.modelId));
}

export class MemoryModelStore implements ModelStore {
  private bytes = new Map<string, Uint8Array>();
  private meta = new Map<string, StoredModelFile>();
  constructor(private quota: QuotaEstimate | null = null) {}
  async has(url: string, sha256: string) {
    return this.meta.get(url)?.sha256 === sha256 && this.bytes.has(url);
  }
  async get(url: string) {
    return this.bytes.get(url) ?? null;
  }
  async put(bytes: Uint8Array, meta: StoredModelFile) {
    this.bytes.set(meta.url, bytes);
    this.meta.set(meta.url, { ...meta });
  }
  async list() {
    return [...this.meta.values()];
  }
  async delete(modelId: string) {
    let n = 0;
    for (const [url, m] of this.meta) {
      if (m.modelId === modelId) {
        this.meta.delete(url);
        this.bytes.delete(url);
        n++;
      }
    }
    return n;
  }
  async deleteUrl(url: string) {
    this.meta.delete(url);
    this.bytes.delete(url);
  }
  async estimateQuota() {
    if (this.quota) return this.quota;
    let usage = 0;
    for (const b of this.bytes.values()) usage += b.byteLength;
    return { usage, quota: Number.POSITIVE_INFINITY };
  }
}

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
