/**
 * The model store interface (bytes by URL plus metadata) and MemoryModelStore, a plain in-memory store for Node and
 * tests. The browser's store (Cache Storage + IndexedDB) is app/platform/browser/model-cache.ts.
 */
import type { Dtype, ModelEntry } from './manifest-types';
import { resolveFileUrl, type ModelSource } from './sources';

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
  /**
   * Find and remove half-written entries: bytes with no metadata (the tab closed between the two writes of `put`)
   * and metadata whose bytes are gone. Stores that write atomically have none and may leave this out.
   */
  sweepOrphans?(): Promise<OrphanSweep>;
}

/** What sweepOrphans removed. */
export interface OrphanSweep {
  /** Cached bytes that had no metadata: their URLs (cache keys) and total size. */
  bytesWithoutMetadata: { url: string; bytes: number }[];
  /** Metadata entries whose bytes were missing (the file is listed no more). */
  metadataWithoutBytes: string[];
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

/** Which variants of a model are fully in the store (every file, right sha256), given its listing. */
export function downloadedVariants(entry: ModelEntry, source: ModelSource, stored: StoredModelFile[]): Dtype[] {
  const byUrl = new Map(stored.map((f) => [f.url, f]));
  const out: Dtype[] = [];
  for (const [dtype, v] of Object.entries(entry.variants)) {
    if (!v?.files.length) continue;
    const ok = v.files.every((f) => byUrl.get(resolveFileUrl(source, f.path))?.sha256 === f.sha256);
    if (ok) out.push(dtype as Dtype);
  }
  return out;
}
