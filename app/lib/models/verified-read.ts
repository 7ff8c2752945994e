/**
 * Reading a model file back from the model cache for a session: the bytes are re-hashed (SHA-256, WebCrypto) and
 * compared with the manifest before ORT ever sees them. The cache's own metadata is not trusted for this: Cache
 * Storage can be changed by anything running on the origin, a disk can flip bits, and before cache keys were
 * normalised (safe-path.ts) a local model pack could write another model's key. A mismatch removes the entry, so the
 * next use downloads a good copy. Cost: about 1 ms per MB in Chromium (README, "Model cache").
 */
import { ModelFileError } from './downloader';
import { sha256Hex } from './hashing';
import type { ModelStore } from './model-cache';

export interface ExpectedFile {
  /** Path in the source, e.g. 'pneumonia-vit/model.onnx' (named in errors). */
  path: string;
  bytes: number;
  /** Lowercase hex SHA-256 from the manifest. */
  sha256: string;
}

/**
 * The cached bytes of `url`, checked against `file`'s size and sha256. Throws ModelFileError: 'missing' (not
 * cached), 'size-mismatch' or 'hash-mismatch' (the entry is deleted first; the message names the file and both
 * hashes' first 12 hex digits).
 */
export async function readVerified(store: ModelStore, url: string, file: ExpectedFile): Promise<Uint8Array> {
  const bytes = await store.get(url);
  if (!bytes) throw new ModelFileError('missing', file.path, `${file.path} is not in the model cache (download the model first)`, { url });
  if (bytes.byteLength !== file.bytes) {
    await store.deleteUrl(url);
    throw new ModelFileError('size-mismatch', file.path, `${file.path} in the model cache has ${bytes.byteLength} bytes, expected ${file.bytes}: it was removed from the cache; download the model again`, { url });
  }
  const hash = await sha256Hex(bytes);
  if (hash !== file.sha256) {
    await store.deleteUrl(url);
    throw new ModelFileError(
      'hash-mismatch',
      file.path,
      `${file.path} in the model cache does not match its sha256 (cached ${hash.slice(0, 12)}…, manifest ${file.sha256.slice(0, 12)}…): it was removed from the cache; download the model again`,
      { url },
    );
  }
  return bytes;
}
