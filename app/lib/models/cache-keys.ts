/**
 * Cache Storage only accepts http(s) request URLs, but a local folder's files are keyed 'local://<folder>/<path>'
 * (./sources). This wrapper maps such keys to a same-origin URL under /__local-models__/ for the cache
 * and back for callers, so the downloader, the model manager and the workers all keep using the source's own URLs.
 * (Nothing is ever served at that path; it is only a key.) Used on the main thread and in the model workers.
 */
import type { ModelStore, OrphanSweep, QuotaEstimate, StoredModelFile } from './model-cache';
import { checkStableKey } from './safe-path';

const LOCAL_PREFIX = 'local://';

function origin(): string {
  return (globalThis as { location?: { origin?: string } }).location?.origin ?? 'http://localhost';
}

/**
 * The Cache Storage key of a model file URL. Throws UnsafeModelPathError when URL parsing would change the key's
 * segments (dot segments, `%2e`, backslashes: see safe-path.ts), so no file can be stored under another's key.
 */
export function cacheKeyForUrl(url: string): string {
  return checkStableKey(url.startsWith(LOCAL_PREFIX) ? `${origin()}/__local-models__/${url.slice(LOCAL_PREFIX.length)}` : url);
}

export function urlForCacheKey(key: string): string {
  const p = `${origin()}/__local-models__/`;
  return key.startsWith(p) ? `${LOCAL_PREFIX}${key.slice(p.length)}` : key;
}

export class LocalKeyModelStore implements ModelStore {
  constructor(private readonly inner: ModelStore) {}
  has(url: string, sha256: string): Promise<boolean> {
    return this.inner.has(cacheKeyForUrl(url), sha256);
  }
  get(url: string): Promise<Uint8Array | null> {
    return this.inner.get(cacheKeyForUrl(url));
  }
  put(bytes: Uint8Array, meta: StoredModelFile): Promise<void> {
    return this.inner.put(bytes, { ...meta, url: cacheKeyForUrl(meta.url) });
  }
  async list(): Promise<StoredModelFile[]> {
    return (await this.inner.list()).map((m) => ({ ...m, url: urlForCacheKey(m.url) }));
  }
  delete(modelId: string): Promise<number> {
    return this.inner.delete(modelId);
  }
  deleteUrl(url: string): Promise<void> {
    return this.inner.deleteUrl(cacheKeyForUrl(url));
  }
  estimateQuota(): Promise<QuotaEstimate | null> {
    return this.inner.estimateQuota();
  }
  async sweepOrphans(): Promise<OrphanSweep> {
    const r = (await this.inner.sweepOrphans?.()) ?? { bytesWithoutMetadata: [], metadataWithoutBytes: [] };
    return { bytesWithoutMetadata: r.bytesWithoutMetadata.map((o) => ({ ...o, url: urlForCacheKey(o.url) })), metadataWithoutBytes: r.metadataWithoutBytes.map(urlForCacheKey) };
  }
}
