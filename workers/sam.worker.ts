/**
 * SAM worker (family `sam`): exposes the segment engine (app/lib/sam/engine.ts) through comlink with the browser's ORT host
 * (ORT from /ort/, model bytes from the model cache) and an IndexedDB embedding store, so a reload or a return to an
 * image does not encode again.
 */
import * as Comlink from 'comlink';
import { createSamEngine, type SamEngine } from '../app/lib/sam/engine';
import { browserOrtHost } from '../app/platform/browser/ort';
import { idbEmbeddingStore } from '../app/platform/browser/embedding-store';

const engine: SamEngine = createSamEngine(browserOrtHost(), idbEmbeddingStore());
Comlink.expose({
  ...engine,
  // the masks and low-res logits move to the page instead of being copied (a few MB at an adult X-ray's size)
  decode: async (...a: Parameters<SamEngine['decode']>) => {
    const out = await engine.decode(...a);
    if (!out.ok) return out;
    const buffers = new Set<ArrayBuffer>();
    for (const x of [...out.value.masks, ...out.value.lowRes, ...(out.value.logits ?? [])]) if (x.byteLength) buffers.add(x.buffer as ArrayBuffer);
    return Comlink.transfer(out, [...buffers]);
  },
  // the painted preview's pixels move to the page instead of being copied
  previewDecode: async (...a: Parameters<SamEngine['previewDecode']>) => {
    const out = await engine.previewDecode(...a);
    return out.ok ? Comlink.transfer(out, [out.value.rgba.buffer]) : out;
  },
} satisfies SamEngine);
