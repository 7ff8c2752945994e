/**
 * IndexedDB store of SAM image embeddings (its own databases, so clearing it never touches the model cache), capped
 * with least-recently-used eviction (app/lib/sam/embedding-cache.ts). The segment worker reads and writes it;
 * the page shows its size and clears it (Models view).
 */
import { clear, createStore, del, entries, get, keys, set, type UseStore } from 'idb-keyval';
import type { CachedEmbedding } from '../../lib/sam/cache-key';
import { LruEmbeddingCache, type EmbeddingIndexEntry, type KeyValueStore } from '../../lib/sam/embedding-cache';

function kv<V>(store: UseStore): KeyValueStore<V> {
  return {
    get: (k) => get<V>(k, store),
    set: (k, v) => set(k, v, store),
    del: (k) => del(k, store),
    keys: async () => (await keys(store)).map(String),
    entries: async () => (await entries<IDBValidKey, V>(store)).map(([k, v]) => [String(k), v] as [string, V]),
    clear: () => clear(store),
  };
}

/** Serialises cache writes, sweeps and clears across the page and the segment worker (Web Locks). */
function exclusive<T>(fn: () => Promise<T>): Promise<T> {
  const locks = (globalThis as { navigator?: { locks?: { request(name: string, cb: () => Promise<T>): Promise<T> } } }).navigator?.locks;
  return locks ? locks.request('cxr-embedding-cache', fn) : fn();
}

/** The app's embedding cache (the page's and the segment worker's views of the same IndexedDB databases). */
export function idbEmbeddingStore(maxBytes?: number): LruEmbeddingCache {
  // idb-keyval holds one object store per database, hence two databases.
  const values = kv<CachedEmbedding>(createStore('cxr-segment-embeddings', 'embeddings'));
  const index = kv<EmbeddingIndexEntry>(createStore('cxr-segment-embeddings-lru', 'index'));
  return new LruEmbeddingCache(values, index, { maxBytes, exclusive });
}
