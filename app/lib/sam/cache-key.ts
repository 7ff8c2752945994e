/**
 * IndexedDB key of a cached image embedding: one per image (sha256 of the decoded pixels' source file), model and
 * variant, and the encoder graph's own sha256 so a changed model never reuses an old embedding. Versioned: bump
 * EMBEDDING_CACHE_VERSION when the stored layout changes.
 */
export const EMBEDDING_CACHE_VERSION = 1;

export interface EmbeddingKeyParts {
  imageSha256: string;
  modelId: string;
  /** dtype of the variant, e.g. 'fp32'. */
  variant: string;
  /** sha256 of the image encoder file the embedding came from. */
  encoderSha256: string;
  /** Backend, because WebGPU and WASM embeddings differ in the last bits. */
  backend?: string;
}

export function embeddingCacheKey(p: EmbeddingKeyParts): string {
  for (const [k, v] of Object.entries(p)) if (v !== undefined && (typeof v !== 'string' || !v || v.includes('|'))) throw new RangeError(`embeddingCacheKey: bad ${k}`);
  return `cxr-seg-emb|v${EMBEDDING_CACHE_VERSION}|${p.modelId}|${p.variant}|${p.encoderSha256.slice(0, 16)}|${p.backend ?? 'any'}|${p.imageSha256}`;
}

/** The entry stored under that key: every encoder output the decoder needs, plus the frame geometry. */
export interface CachedEmbedding {
  features: Record<string, { data: Float32Array; dims: number[] }>;
  geometry: { origW: number; origH: number; resizedW: number; resizedH: number; size: number };
  encodeMs: number;
  createdAt: number;
}
