import type { DownloadProgress } from './downloader';
import type { Dtype, ModelEntry } from './manifest-types';

/** Makes a model variant's files readable by the engines (a platform adapter of app/services/inference.ts). */
export interface ModelFiles {
  /**
   * Browser: download (verified, into the model cache) unless already there; Node: check every file on disk (size,
   * sha256). Throws an Error naming the file and the cause.
   */
  ensure(entry: ModelEntry, dtype: Dtype, opts?: { onProgress?: (p: DownloadProgress) => void }): Promise<void>;
}
