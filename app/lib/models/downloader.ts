/**
 * Model downloads with one aggregate progress stream, sha256 + size verification, retries (resuming with Range when
 * the server allows), de-duplication of concurrent requests for the same URL, and storage via a ModelStore.
 */
import { sha256Hex } from './hashing';
import type { ModelStore } from './model-cache';
import { openFile, resolveFileUrl, type FetchLike, type ModelSource } from './sources';
import type { Dtype } from './manifest-types';

export type ModelFileErrorCode = 'hash-mismatch' | 'size-mismatch' | 'missing' | 'too-large' | 'no-space' | 'http' | 'network' | 'aborted';

export class ModelFileError extends Error {
  readonly code: ModelFileErrorCode;
  /** The file's path in the source (e.g. 'pneumonia-vit/model.onnx'). */
  readonly file: string;
  readonly url?: string;
  readonly status?: number;
  constructor(code: ModelFileErrorCode, file: string, message: string, extra: { url?: string; status?: number; cause?: unknown } = {}) {
    super(message, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'ModelFileError';
    this.code = code;
    this.file = file;
    this.url = extra.url;
    this.status = extra.status;
  }
}

export interface DownloadFileSpec {
  path: string;
  bytes: number;
  sha256: string;
  role?: string;
}

export interface DownloadProgress {
  loadedBytes: number;
  totalBytes: number;
  /** 0–100 */
  percent: number;
  /** Seconds left at the current network rate; null until it can be estimated. */
  etaSeconds: number | null;
  /** Path of the file being received (or last finished). */
  file: string;
  filesDone: number;
  filesTotal: number;
  /** Bytes that came from the cache without downloading. */
  cachedBytes: number;
}

export interface DownloadRequest {
  source: ModelSource;
  files: DownloadFileSpec[];
  modelId: string;
  dtype: Dtype | string;
  onProgress?: (p: DownloadProgress) => void;
  signal?: AbortSignal;
  /** Refuse when the files together exceed this (the device cannot hold them). */
  maxBytes?: number;
  /**
   * Verify: re-hash every cached file (SHA-256 of the bytes in the cache, not the sha256 recorded when it was
   * stored); a file whose bytes no longer match the manifest is deleted and downloaded again.
   */
  rehash?: boolean;
  /** Told per file of a `rehash` run: 'ok' (cached bytes match), 'repaired' (mismatch, downloaded again), 'downloaded' (was missing). */
  onVerified?: (path: string, result: 'ok' | 'repaired' | 'downloaded') => void;
}

export interface ModelDownloaderOptions {
  store: ModelStore;
  fetch?: FetchLike;
  /** Extra attempts after a broken stream / network error / 5xx (default 3). */
  retries?: number;
  /** Wait before retry n (default 250·2^n ms). */
  retryDelayMs?: (attempt: number) => number;
  now?: () => number;
}

interface InFlight {
  promise: Promise<Uint8Array>;
  listeners: Set<(loaded: number) => void>;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (ms <= 0) return resolve();
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(t); reject(signal.reason); }, { once: true });
  });
}

function mb(n: number): string {
  return `${(n / 2 ** 20).toFixed(1)} MB`;
}

export class ModelDownloader {
  readonly store: ModelStore;
  private readonly fetchImpl: FetchLike;
  private readonly retries: number;
  private readonly retryDelayMs: (attempt: number) => number;
  private readonly now: () => number;
  private readonly inflight = new Map<string, InFlight>();

  constructor(opts: ModelDownloaderOptions) {
    this.store = opts.store;
    this.fetchImpl = opts.fetch ?? ((u, i) => fetch(u, i));
    this.retries = opts.retries ?? 3;
    this.retryDelayMs = opts.retryDelayMs ?? ((n) => 250 * 2 ** n);
    this.now = opts.now ?? (() => (typeof performance !== 'undefined' ? performance.now() : Date.now()));
  }

  /** Number of downloads currently in flight (for tests and UI). */
  get inflightCount(): number {
    return this.inflight.size;
  }

  /**
   * Make every file available (cache or network), verified; returns bytes by path. On any failure nothing
   * unverified is stored and the error is a ModelFileError naming the file.
   */
  async download(req: DownloadRequest): Promise<Map<string, Uint8Array>> {
    const total = req.files.reduce((s, f) => s + f.bytes, 0);
    if (req.maxBytes !== undefined && total > req.maxBytes) {
      const biggest = [...req.files].sort((a, b) => b.bytes - a.bytes)[0];
      throw new ModelFileError('too-large', biggest?.path ?? req.modelId, `${req.modelId} needs ${mb(total)}, more than this device allows (${mb(req.maxBytes)})`);
    }
    await this.checkSpace(req);
    const loadedByFile = new Map<string, number>();
    let cachedBytes = 0;
    let filesDone = 0;
    let currentFile = req.files[0]?.path ?? '';
    const started = this.now();
    const emit = () => {
      if (!req.onProgress) return;
      let loaded = 0;
      for (const v of loadedByFile.values()) loaded += v;
      const net = loaded - cachedBytes;
      const elapsed = (this.now() - started) / 1000;
      let eta: number | null = null;
      if (net > 0 && elapsed > 0.25) eta = Math.max(0, (total - loaded) / (net / elapsed));
      if (loaded >= total) eta = 0;
      req.onProgress({
        loadedBytes: loaded,
        totalBytes: total,
        percent: total > 0 ? Math.min(100, (100 * loaded) / total) : 100,
        etaSeconds: eta,
        file: currentFile,
        filesDone,
        filesTotal: req.files.length,
        cachedBytes,
      });
    };
    emit();
    const out = new Map<string, Uint8Array>();
    // Sequential: model files are large, parallel streams only split the same bandwidth and memory peaks add up.
    for (const f of req.files) {
      req.signal?.throwIfAborted();
      currentFile = f.path;
      const url = resolveFileUrl(req.source, f.path);
      let damaged = false;
      if (await this.store.has(url, f.sha256)) {
        const bytes = await this.store.get(url);
        if (bytes && bytes.byteLength === f.bytes && (!req.rehash || (await sha256Hex(bytes)) === f.sha256)) {
          out.set(f.path, bytes);
          loadedByFile.set(f.path, f.bytes);
          cachedBytes += f.bytes;
          filesDone++;
          req.onVerified?.(f.path, 'ok');
          emit();
          continue;
        }
        damaged = true;
        await this.store.deleteUrl(url); // stale or damaged entry
      }
      const bytes = await this.fetchVerified(req, f, url, (n) => {
        loadedByFile.set(f.path, n);
        emit();
      });
      out.set(f.path, bytes);
      loadedByFile.set(f.path, f.bytes);
      filesDone++;
      req.onVerified?.(f.path, damaged ? 'repaired' : 'downloaded');
      emit();
    }
    return out;
  }

  /**
   * Refuse before any byte is fetched when the files still missing from the store do not fit the free storage
   * (quota − usage from the store's estimate: navigator.storage.estimate() in the browser). ModelFileError 'no-space'
   * naming both numbers. No estimate (API missing): nothing to compare, the browser's own QuotaExceededError remains.
   */
  private async checkSpace(req: DownloadRequest): Promise<void> {
    const missing: DownloadFileSpec[] = [];
    for (const f of req.files) if (!(await this.store.has(resolveFileUrl(req.source, f.path), f.sha256))) missing.push(f);
    const needed = missing.reduce((s, f) => s + f.bytes, 0);
    if (needed === 0) return;
    const q = await this.store.estimateQuota();
    if (!q || !Number.isFinite(q.quota)) return;
    const free = Math.max(0, q.quota - q.usage);
    if (needed > free) {
      const biggest = [...missing].sort((a, b) => b.bytes - a.bytes)[0];
      throw new ModelFileError(
        'no-space',
        biggest.path,
        `${req.modelId} needs ${mb(needed)} of browser storage but only ${mb(free)} is free (${mb(q.usage)} used of a ${mb(q.quota)} quota); nothing was downloaded. Delete other models or clear the segmentation embedding cache in the Models view.`,
      );
    }
  }

  /** Download one file (shared with any concurrent request for the same URL), verify it, store it. */
  private fetchVerified(req: DownloadRequest, f: DownloadFileSpec, url: string, onLoaded: (n: number) => void): Promise<Uint8Array> {
    const existing = this.inflight.get(url);
    if (existing) {
      existing.listeners.add(onLoaded);
      return existing.promise;
    }
    const listeners = new Set<(n: number) => void>([onLoaded]);
    const promise = (async () => {
      try {
        const bytes = await this.fetchWithRetries(req, f, url, (n) => listeners.forEach((l) => l(n)));
        const hash = await sha256Hex(bytes);
        if (hash !== f.sha256) {
          throw new ModelFileError('hash-mismatch', f.path, `${f.path} failed its integrity check (sha256 ${hash.slice(0, 12)}…, expected ${f.sha256.slice(0, 12)}…); it was not saved`, { url });
        }
        await this.store.put(bytes, { url, path: f.path, modelId: req.modelId, dtype: req.dtype, bytes: bytes.byteLength, sha256: hash, storedAt: Date.now() });
        return bytes;
      } finally {
        this.inflight.delete(url);
      }
    })();
    this.inflight.set(url, { promise, listeners });
    return promise;
  }

  private async fetchWithRetries(req: DownloadRequest, f: DownloadFileSpec, url: string, onLoaded: (n: number) => void): Promise<Uint8Array> {
    // The manifest gives the size: receive straight into one buffer (no chunk list + concatenation, which would
    // double the peak memory of multi-GB graphs).
    const buffer = new Uint8Array(f.bytes);
    let received = 0;
    let lastError: unknown;
    for (let attempt = 0; attempt <= this.retries; attempt++) {
      req.signal?.throwIfAborted();
      if (attempt > 0) await sleep(this.retryDelayMs(attempt - 1), req.signal);
      const headers: Record<string, string> = {};
      if (received > 0) headers.Range = `bytes=${received}-`;
      let res: Response;
      try {
        res = await openFile(req.source, f.path, { signal: req.signal, headers, cache: 'no-store' }, this.fetchImpl);
      } catch (e) {
        if (req.signal?.aborted) throw new ModelFileError('aborted', f.path, `Download of ${f.path} was cancelled`, { url, cause: e });
        lastError = e;
        continue;
      }
      if (res.status === 404 || res.status === 410) {
        throw new ModelFileError('missing', f.path, `Model file ${f.path} was not found (HTTP ${res.status} at ${url})`, { url, status: res.status });
      }
      if (res.status === 416) {
        throw new ModelFileError('size-mismatch', f.path, `${f.path} is smaller than the manifest says (${received} of ${f.bytes} bytes); it was not saved`, { url, status: 416 });
      }
      if (res.status >= 500 || res.status === 429) {
        lastError = new ModelFileError('http', f.path, `Server error HTTP ${res.status} for ${f.path}`, { url, status: res.status });
        continue;
      }
      if (!res.ok) throw new ModelFileError('http', f.path, `Could not download ${f.path}: HTTP ${res.status}`, { url, status: res.status });
      // Single-page-app servers (vite preview, many static hosts) answer an unknown path with index.html and 200.
      // No model file is HTML, so this is a missing file, not a stream to retry.
      if ((res.headers.get('content-type') ?? '').startsWith('text/html')) {
        throw new ModelFileError('missing', f.path, `Model file ${f.path} was not found at ${url} (the server answered with an HTML page)`, { url, status: res.status });
      }
      if (received > 0 && res.status !== 206) {
        // Server ignored Range: start over.
        received = 0;
        onLoaded(0);
      }
      const append = (value: Uint8Array) => {
        // Checked per chunk: a Blob-backed Response (local folders) or a custom fetch may not stop on the signal.
        if (req.signal?.aborted) throw new ModelFileError('aborted', f.path, `Download of ${f.path} was cancelled`, { url, cause: req.signal.reason });
        if (received + value.byteLength > f.bytes) {
          throw new ModelFileError('size-mismatch', f.path, `${f.path} is larger than the manifest says (${f.bytes} bytes); it was not saved`, { url });
        }
        buffer.set(value, received);
        received += value.byteLength;
        onLoaded(received);
      };
      try {
        if (!res.body) {
          append(new Uint8Array(await res.arrayBuffer()));
        } else {
          const reader = res.body.getReader();
          try {
            for (;;) {
              const { done, value } = await reader.read();
              if (done) break;
              append(value);
            }
          } catch (e) {
            await reader.cancel().catch(() => {});
            throw e;
          }
        }
      } catch (e) {
        if (e instanceof ModelFileError) throw e;
        if (req.signal?.aborted) throw new ModelFileError('aborted', f.path, `Download of ${f.path} was cancelled`, { url, cause: e });
        lastError = e; // broken stream: retry, resuming from `received` if the server honours Range
        continue;
      }
      if (received < f.bytes) {
        // Stream ended early without an error: treat like an interrupted download.
        lastError = new ModelFileError('size-mismatch', f.path, `${f.path} ended after ${received} of ${f.bytes} bytes`, { url });
        continue;
      }
      return buffer;
    }
    const msg = lastError instanceof Error ? lastError.message : String(lastError);
    if (lastError instanceof ModelFileError) throw lastError;
    throw new ModelFileError('network', f.path, `Could not download ${f.path} after ${this.retries + 1} attempts: ${msg}`, { url, cause: lastError });
  }
}
