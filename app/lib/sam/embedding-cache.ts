/**
 * The SAM image-embedding cache with a size cap and least-recently-used eviction.
 *
 * Embeddings are stored by key (cache-key.ts) in one key-value store; a second, small store indexes them (bytes,
 * last use), so eviction and the Models view's count and size never read the embeddings themselves (a few MB
 * each). The index entry is written before the embedding: a tab closed in between leaves an index entry without
 * a value, which `stats` and `get` find and drop; a value without an index entry (written by an older version, or
 * an index cleared alone) is removed by `stats` as well. Storage-agnostic: IndexedDB in the browser
 * (app/platform/browser/embedding-store.ts), maps in tests.
 */
import type { CachedEmbedding } from './cache-key';

/** Default cap: 256 MiB, about 64 images at SAM ViT-B's 256×64×64 float32 embedding (4 MiB each). */
export const DEFAULT_EMBEDDING_CACHE_BYTES = 256 * 2 ** 20;

/** Minimal async key-value store (idb-keyval's shape). */
export interface KeyValueStore<V> {
  get(key: string): Promise<V | undefined>;
  set(key: string, value: V): Promise<void>;
  del(key: string): Promise<void>;
  keys(): Promise<string[]>;
  entries(): Promise<[string, V][]>;
  clear(): Promise<void>;
}

export interface EmbeddingIndexEntry {
  /** Bytes of the stored embedding (embeddingBytes). */
  bytes: number;
  /** ms since epoch of the last get or set. */
  lastUsed: number;
}

export interface EmbeddingCacheStats {
  count: number;
  bytes: number;
  maxBytes: number;
  /** Entries dropped by this call because half of them was missing (index without value, value without index). */
  repaired: number;
}

/** Bytes an embedding takes: its tensors' buffers plus a small allowance for keys and geometry. */
export function embeddingBytes(e: CachedEmbedding): number {
  let n = 256;
  for (const f of Object.values(e.features)) n += f.data.byteLength + 8 * f.dims.length;
  return n;
}

/**
 * Which keys to evict so that the total fits `maxBytes`: least recently used first (ties: key order, for a stable
 * result). Pure; `entries` are [key, index entry] pairs.
 */
export function lruEvictions(entries: [string, EmbeddingIndexEntry][], maxBytes: number): string[] {
  let total = entries.reduce((s, [, e]) => s + e.bytes, 0);
  const out: string[] = [];
  const byAge = [...entries].sort((a, b) => a[1].lastUsed - b[1].lastUsed || (a[0] < b[0] ? -1 : 1));
  for (const [k, e] of byAge) {
    if (total <= maxBytes) break;
    out.push(k);
    total -= e.bytes;
  }
  return out;
}

export interface LruEmbeddingCacheOptions {
  /** Cap on the total bytes (default DEFAULT_EMBEDDING_CACHE_BYTES). */
  maxBytes?: number;
  now?: () => number;
  /**
   * Runs writes and sweeps one at a time across threads (the segment worker writes, the page shows and clears):
   * navigator.locks in the browser. Default: none.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/** An EmbeddingStore (app/lib/sam/engine.ts) with a size cap and LRU eviction. */
export class LruEmbeddingCache {
  readonly maxBytes: number;
  private readonly now: () => number;
  private readonly exclusive: <T>(fn: () => Promise<T>) => Promise<T>;

  constructor(
    private readonly values: KeyValueStore<CachedEmbedding>,
    private readonly index: KeyValueStore<EmbeddingIndexEntry>,
    opts: LruEmbeddingCacheOptions = {},
  ) {
    this.maxBytes = opts.maxBytes ?? DEFAULT_EMBEDDING_CACHE_BYTES;
    this.now = opts.now ?? (() => Date.now());
    this.exclusive = opts.exclusive ?? ((fn) => fn());
  }

  /** The embedding, marked as just used; undefined when absent (a half-written entry is dropped). */
  async get(key: string): Promise<CachedEmbedding | undefined> {
    const [value, idx] = await Promise.all([this.values.get(key), this.index.get(key)]);
    if (!value) {
      if (idx) await this.index.del(key);
      return undefined;
    }
    await this.index.set(key, { bytes: idx?.bytes ?? embeddingBytes(value), lastUsed: this.now() });
    return value;
  }

  /**
   * Store an embedding, then evict the least recently used ones until the total fits the cap. One embedding larger
   * than the whole cap is not stored (it would evict everything and then itself).
   */
  async set(key: string, value: CachedEmbedding): Promise<void> {
    const bytes = embeddingBytes(value);
    if (bytes > this.maxBytes) return;
    await this.exclusive(async () => {
      await this.index.set(key, { bytes, lastUsed: this.now() });
      await this.values.set(key, value);
      const evict = lruEvictions(await this.index.entries(), this.maxBytes);
      for (const k of evict) await this.remove(k);
    });
  }

  /** Count and bytes (from the index), after dropping half-written entries. */
  stats(): Promise<EmbeddingCacheStats> {
    return this.exclusive(() => this.statsNow());
  }

  private async statsNow(): Promise<EmbeddingCacheStats> {
    const [idx, valueKeys] = await Promise.all([this.index.entries(), this.values.keys()]);
    const valueSet = new Set(valueKeys);
    const indexed = new Set(idx.map(([k]) => k));
    let repaired = 0;
    let count = 0;
    let bytes = 0;
    for (const [k, e] of idx) {
      if (!valueSet.has(k)) {
        await this.index.del(k);
        repaired++;
      } else {
        count++;
        bytes += e.bytes;
      }
    }
    for (const k of valueKeys) {
      if (indexed.has(k)) continue;
      await this.values.del(k);
      repaired++;
    }
    return { count, bytes, maxBytes: this.maxBytes, repaired };
  }

  /** Remove every embedding (the Models view's "Clear"). */
  clear(): Promise<void> {
    return this.exclusive(async () => {
      await this.values.clear();
      await this.index.clear();
    });
  }

  private async remove(key: string): Promise<void> {
    await this.values.del(key);
    await this.index.del(key);
  }
}
