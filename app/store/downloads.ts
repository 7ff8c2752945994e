/**
 * Downloads and the model cache: the cache's listing and quota, the one download (or verification) at a time with
 * its progress, cancelling it, and deleting a model's files. The models slice (models.ts) asks for a download
 * through `downloadModel` when a session needs files that are not cached yet.
 */
import { ModelDownloader, type DownloadProgress } from '../lib/models/downloader';
import { downloadedVariants, type ModelStore, type OrphanSweep, type QuotaEstimate, type StoredModelFile } from '../lib/models/model-cache';
import type { EmbeddingCacheStats, LruEmbeddingCache } from '../lib/sam/embedding-cache';
import { idbEmbeddingStore } from '../platform/browser/embedding-store';
import { variantFiles } from '../lib/models/manifest';
import { withDtypeChoice } from '../lib/models/dtype-choice';
import { entrySource } from '../lib/hub/source';
import { errorMessage } from '../lib/runtime/outcome';
import { browserModelStore } from '../platform/browser/model-cache';
import { guarded } from './alerts';
import type { SliceCreator } from './state';

export interface DownloadState {
  modelId: string;
  progress?: DownloadProgress;
  error?: string;
  done?: boolean;
}

/** The last sweep of half-written model cache entries that removed something (shown in the Models view). */
export interface CacheRepair {
  when: 'start-up' | 'verify';
  /** Cached files without metadata (a tab closed mid-write) that were deleted, and their bytes. */
  files: number;
  bytes: number;
  /** Metadata entries whose bytes were gone. */
  listings: number;
}

export interface DownloadsSlice {
  stored: StoredModelFile[];
  quota: QuotaEstimate | null;
  download: DownloadState | null;
  cacheRepair: CacheRepair | null;
  /** The SAM embedding cache's count and bytes (null until read, or where IndexedDB is unavailable). */
  embeddingCache: EmbeddingCacheStats | null;
  refreshStored(): Promise<void>;
  /** Find and remove half-written model cache entries (at start-up and on Verify); records what it removed. */
  sweepModelCache(when: CacheRepair['when']): Promise<void>;
  refreshEmbeddingCache(): Promise<void>;
  clearEmbeddingCache(): Promise<void>;
  /**
   * A new service worker (app version) is installed and waiting: `apply` activates it and reloads the page. Set by
   * the registration in main.tsx (prompt mode: nothing reloads until the user asks, see UpdateBanner).
   */
  appUpdate: { apply(): Promise<void> } | null;
  setAppUpdate(u: { apply(): Promise<void> } | null): void;
  /** Download (or verify from the cache) the variant this device will run; false (with an alert) on failure. */
  downloadModel(id: string): Promise<boolean>;
  /**
   * The Models view's "Verify": re-hash (SHA-256) every cached file of each downloaded variant against the manifest;
   * damaged files are deleted, downloaded again and the model's sessions released. The outcome is an alert.
   */
  verifyModel(id: string): Promise<void>;
  cancelDownload(): void;
  deleteModel(id: string): Promise<void>;
}

export const createDownloadsSlice: SliceCreator<DownloadsSlice> = (set, get) => {
  // Browser adapters, created on first use: Cache Storage needs a secure context, and its absence must be an alert.
  let store: ModelStore | null = null;
  let downloader: ModelDownloader | null = null;
  const modelStore = () => (store ??= browserModelStore());
  const modelDownloader = () => (downloader ??= new ModelDownloader({ store: modelStore() }));
  let embeddings: LruEmbeddingCache | null = null;
  const embeddingCache = () => (embeddings ??= idbEmbeddingStore());
  let downloadAbort: AbortController | null = null;
  let downloadQueue: Promise<unknown> = Promise.resolve();

  async function downloadNow(id: string): Promise<boolean> {
    const s = get();
    const listed = s.manifest?.models.find((m) => m.id === id);
    if (!listed) return false;
    const entry = withDtypeChoice(listed, s.settings.dtypes[id]);
    let plan;
    try {
      plan = await get().inference.plan({ entry, override: s.settings.backend });
    } catch (e) {
      get().alert(`${entry.name} cannot run here: ${errorMessage(e)}`);
      return false;
    }
    downloadAbort = new AbortController();
    set({ download: { modelId: id } });
    try {
      await modelDownloader().download({
        source: entrySource(entry, s.source),
        files: variantFiles(entry.variants[plan.dtype]!),
        modelId: entry.id,
        dtype: plan.dtype,
        signal: downloadAbort.signal,
        onProgress: (progress) => set({ download: { modelId: id, progress } }),
      });
      set((st) => ({ download: { ...st.download!, done: true } }));
      return true;
    } catch (e) {
      // Said once, in the alert region; the progress bar shows it only after that alert is dismissed, and the
      // model's load state refers to it (models.ts, DownloadReportedError).
      const msg = `Download of ${entry.name} failed: ${errorMessage(e)}`;
      set((st) => ({ download: { ...(st.download ?? { modelId: id }), error: msg } }));
      get().alert(msg);
      return false;
    } finally {
      downloadAbort = null;
      await get().refreshStored();
    }
  }

  return {
    stored: [],
    quota: null,
    download: null,
    cacheRepair: null,
    embeddingCache: null,
    appUpdate: null,
    setAppUpdate: (appUpdate) => set({ appUpdate }),

    async sweepModelCache(when) {
      // In the download queue: never beside a download of this page (other tabs: the store's Web Lock).
      const run = downloadQueue.then(async () => {
        let r: OrphanSweep | undefined;
        try {
          r = await modelStore().sweepOrphans?.();
        } catch {
          return; // no Cache Storage here: refreshStored says so
        }
        if (!r || (!r.bytesWithoutMetadata.length && !r.metadataWithoutBytes.length)) return;
        const repair: CacheRepair = { when, files: r.bytesWithoutMetadata.length, bytes: r.bytesWithoutMetadata.reduce((a, o) => a + o.bytes, 0), listings: r.metadataWithoutBytes.length };
        set({ cacheRepair: repair });
        await get().refreshStored();
      });
      downloadQueue = run.catch(() => undefined);
      await run;
    },

    async refreshEmbeddingCache() {
      try {
        set({ embeddingCache: await embeddingCache().stats() });
      } catch {
        set({ embeddingCache: null });
      }
    },

    clearEmbeddingCache: guarded(get, 'Clearing the segmentation embedding cache failed', async () => {
      await embeddingCache().clear();
      await get().refreshEmbeddingCache();
    }),

    async refreshStored() {
      try {
        const [stored, quota] = await Promise.all([modelStore().list(), modelStore().estimateQuota()]);
        set({ stored, quota });
      } catch (e) {
        set({ stored: [], quota: null });
        get().alert(`The model cache is not available here: ${errorMessage(e)}`);
      }
    },

    downloadModel(id) {
      // One download at a time (one progress bar, bandwidth not split): later requests queue behind it.
      const run = downloadQueue.then(() => downloadNow(id));
      downloadQueue = run.catch(() => false);
      return run.catch((e) => {
        get().alert(`Download failed: ${errorMessage(e)}`);
        return false;
      });
    },

    verifyModel: guarded(get, 'Verifying the model files failed', async (id: string) => {
      const entry = get().manifest?.models.find((m) => m.id === id);
      if (!entry) return;
      const dtypes = downloadedVariants(entry, entrySource(entry, get().source), get().stored);
      if (!dtypes.length) {
        await get().downloadModel(id);
        return;
      }
      await get().sweepModelCache('verify');
      const run = downloadQueue.then(async () => {
        const ok: string[] = [];
        const repaired: string[] = [];
        downloadAbort = new AbortController();
        set({ download: { modelId: id } });
        try {
          for (const dtype of dtypes) {
            await modelDownloader().download({
              source: entrySource(entry, get().source),
              files: variantFiles(entry.variants[dtype]!),
              modelId: entry.id,
              dtype,
              signal: downloadAbort.signal,
              rehash: true,
              onVerified: (path, r) => (r === 'ok' ? ok : repaired).push(path),
              onProgress: (progress) => set({ download: { modelId: id, progress } }),
            });
          }
          set((st) => ({ download: { ...st.download!, done: true } }));
        } finally {
          downloadAbort = null;
          await get().refreshStored();
        }
        if (repaired.length) await get().inference.release(id);
        const n = ok.length + repaired.length;
        get().alert(
          repaired.length
            ? `${entry.name}: ${repaired.length} of ${n} cached files did not match their sha256 and were downloaded again (${repaired.join(', ')})`
            : `${entry.name}: all ${n} cached files (${dtypes.join(', ')}) re-hashed, sha256 matches the manifest`,
          repaired.length ? 'error' : 'info',
        );
      });
      downloadQueue = run.catch(() => undefined);
      await run;
    }),

    cancelDownload() {
      downloadAbort?.abort(new DOMException('cancelled by the user', 'AbortError'));
    },

    deleteModel: guarded(get, 'Deleting the model failed', async (id: string) => {
      await modelStore().delete(id);
      await get().releaseSessions();
      set((st) => {
        const models = { ...st.models };
        delete models[id];
        return { models, download: st.download?.modelId === id ? null : st.download };
      });
      await get().refreshStored();
    }),
  };
};
