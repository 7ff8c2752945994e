/** IndexedDB store of SAM image embeddings (its own database, so clearing it never touches the model cache). */
import { createStore, get as idbGet, set as idbSet } from 'idb-keyval';
import type { CachedEmbedding } from '../../lib/segment/cache-key';
import type { EmbeddingStore } from '../../lib/segment/engine';

export function idbEmbeddingStore(): EmbeddingStore {
  const store = createStore('cxr-segment-embeddings', 'embeddings');
  return {
    get: (key) => idbGet<CachedEmbedding>(key, store),
    set: (key, value) => idbSet(key, value, store),
  };
}
