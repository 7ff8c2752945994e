/**
 * Segment slice: the chosen SAM-family model, its load, each image's embedding, the prompts and decodes of the
 * active layer (one undo step each), and the hover preview (coalesced: a burst of pointer moves costs at most one
 * extra decode). Layers and undo/redo: segment-layers.ts; exports: segment-export.ts; the folder evaluation:
 * segment-eval.ts. Talks to workers/segment.worker.ts; all geometry and mask logic is in app/lib/segment.
 */
import {
  historyPush,
  LatestOnly,
  LUNGS,
  histogram01,
  type Box,
  type History,
  type PromptPoint,
  type SamPrompt,
} from '../lib/segment';
import type { SegmentModelInfo } from '../lib/segment/engine';
import type { Decoded } from '../lib/segment/pipeline';
import { errorMessage } from '../lib/runtime/outcome';
import type { ImageItem } from './images';
import type { SegEvalState } from './segment-eval';
import { segmentAccess } from './segment-access';
import type { SliceCreator } from './state';

export type { SegEvalState };
export { layerMask, segmentEntry } from './segment-access';

export interface SegLayer {
  id: number;
  label: string;
  color: [number, number, number];
  points: PromptPoint[];
  box?: Box;
  /** Candidate masks of the last decode (original size), their predicted IoU and low-res logits. */
  masks?: Uint8Array[];
  iou?: number[];
  lowRes?: Float32Array[];
  selected: number;
}

export interface SegImageState {
  key?: string;
  encoding: boolean;
  /** Model request the key belongs to (model | backend | source): another one means encoding again. */
  keyTag?: string;
  /** Where the embedding came from: 'encoder' (computed now), 'indexeddb' (cached), 'memory'. */
  from?: 'memory' | 'indexeddb' | 'encoder';
  encodeMs?: number;
  resident?: 'gpu' | 'cpu';
  width: number;
  height: number;
  history: History<SegLayer[]>;
  activeLayer: number;
  decodeMs?: number;
  decoding: boolean;
  error?: string;
}

export interface SegmentState {
  modelId?: string;
  info?: SegmentModelInfo;
  loading: boolean;
  loadMessage?: string;
  loadError?: string;
  byImage: Record<string, SegImageState>;
  tool: 'click' | 'box';
  refine: boolean;
  hoverPreview: boolean;
  opacity: number;
  preview?: { imageId: string; mask: Uint8Array };
  /** Decodes run for the hover preview (the runtime panel and tests read it). */
  hoverDecodes: number;
  eval: SegEvalState;
  layerSeq: number;
}

export interface SegmentSlice {
  segment: SegmentState;
  segmentSetModel(id: string): Promise<void>;
  /** Load the model and encode the current image (embedding from the cache when there is one). */
  segmentPrepare(): Promise<void>;
  segmentClick(x: number, y: number, label: 0 | 1): Promise<void>;
  segmentBox(box: Box): Promise<void>;
  segmentHover(x: number, y: number): void;
  segmentHoverEnd(): void;
  segmentSet(p: Partial<Pick<SegmentState, 'tool' | 'refine' | 'hoverPreview' | 'opacity'>>): void;
  /** Load the chosen model's sessions (once per model request); false, with an alert, when that fails. */
  segmentEnsureLoaded(): Promise<boolean>;
  /**
   * One decode of `prompt` on the current image returning the logits at the original size (no undo step): for
   * parity checks and console scripts.
   */
  segmentDecodeLogits(prompt: SamPrompt, multimask?: boolean): Promise<Decoded | undefined>;
}

export { defaultSegmentModelId as defaultSegmentModel } from '../lib/segment/models';

export const createSegmentSlice: SliceCreator<SegmentSlice> = (set, get) => {
  const { req, tagOf, engine, current, patchSeg, patchImage, imageState, activeOf } = segmentAccess(set, get);
  let loadPromise: Promise<boolean> | null = null;
  let loadedFor: string | null = null;

  async function ensureLoaded(): Promise<boolean> {
    const r = req();
    if (!r) return false;
    const tag = tagOf(r);
    if (loadedFor === tag && get().segment.info) return true;
    if (loadPromise && loadedFor === tag) return loadPromise;
    loadedFor = tag;
    loadPromise = (async () => {
      patchSeg({ loading: true, loadError: undefined, loadMessage: 'checking model files' });
      try {
        // download (verified) + the family's session, through the app's inference service
        await get().inference.ensureSession(r, (m) => patchSeg({ loadMessage: m }));
        const out = await engine().info(r);
        if (!out.ok) throw new Error(out.message);
        patchSeg({ info: out.value, loading: false, loadMessage: undefined });
        get().modelRan(r.entry.id, out.value.report);
        return true;
      } catch (e) {
        const message = errorMessage(e);
        patchSeg({ loading: false, loadError: message, info: undefined, loadMessage: undefined });
        get().alert(message);
        loadedFor = null;
        return false;
      }
    })();
    return loadPromise;
  }

  async function ensureEncoded(item: ImageItem): Promise<string | null> {
    const st = imageState(item);
    const r0 = req();
    if (st.key && !st.encoding && r0 && st.keyTag === tagOf(r0)) return st.key;
    if (!(await ensureLoaded())) return null;
    const r = req()!;
    patchImage(item.id, { encoding: true, error: undefined });
    const out = await engine().encode(r, item.raster);
    if (!out.ok) {
      patchImage(item.id, { encoding: false, error: out.message });
      get().alert(out.message);
      return null;
    }
    patchImage(item.id, { encoding: false, key: out.value.key, keyTag: tagOf(r), from: out.value.from, encodeMs: out.value.encodeMs, resident: out.value.resident });
    return out.value.key;
  }

  function promptFor(layer: SegLayer, extra?: PromptPoint): SamPrompt {
    const s = get().segment;
    const refine = s.refine && s.info?.supportsMaskInput && layer.lowRes?.[layer.selected];
    return { points: extra ? [...layer.points, extra] : layer.points, box: layer.box, maskInput: refine ? layer.lowRes![layer.selected] : undefined };
  }

  /** Apply a new prompt to the active layer, decode, and record one undo step. */
  async function interact(change: (l: SegLayer) => SegLayer): Promise<void> {
    const item = current();
    if (!item) return;
    const key = await ensureEncoded(item);
    if (!key) return;
    const st = get().segment.byImage[item.id];
    const layer = change(activeOf(st));
    patchImage(item.id, { decoding: true });
    const out = await engine().decode(req()!, key, promptFor({ ...layer, lowRes: activeOf(st).lowRes, selected: activeOf(st).selected }), { masks: 'best' });
    if (!out.ok) {
      patchImage(item.id, { decoding: false, error: out.message });
      get().alert(out.message);
      return;
    }
    const d = out.value;
    const next: SegLayer = { ...layer, masks: d.masks, iou: d.iou, lowRes: d.lowRes, selected: d.best };
    const now = get().segment.byImage[item.id];
    patchImage(item.id, {
      decoding: false,
      decodeMs: d.decodeMs,
      error: undefined,
      history: historyPush(now.history, now.history.present.map((l) => (l.id === next.id ? next : l))),
    });
    patchSeg({ preview: undefined });
  }

  const hover = new LatestOnly<{ imageId: string; key: string; prompt: SamPrompt }, { imageId: string; mask: Uint8Array } | null>(
    async ({ imageId, key, prompt }) => {
      const r = req();
      if (!r) return null;
      const out = await engine().decode(r, key, prompt, { masks: 'best' });
      set((s) => ({ segment: { ...s.segment, hoverDecodes: s.segment.hoverDecodes + 1 } }));
      return out.ok ? { imageId, mask: out.value.masks[out.value.best] } : null;
    },
    (res) => {
      if (res && get().segment.hoverPreview && get().currentId === res.imageId) patchSeg({ preview: res });
    },
  );

  return {
    segment: {
      loading: false,
      byImage: {},
      tool: 'click',
      refine: true,
      hoverPreview: true,
      opacity: 0.45,
      hoverDecodes: 0,
      eval: { running: false, prompt: 'box', rows: [], failed: [], total: 0 },
      layerSeq: 0,
    },

    async segmentSetModel(id) {
      // Embeddings belong to a model: the per-image keys are dropped (masks stay; they are pixels).
      set((s) => ({
        segment: {
          ...s.segment,
          modelId: id,
          info: undefined,
          loadError: undefined,
          preview: undefined,
          byImage: Object.fromEntries(Object.entries(s.segment.byImage).map(([k, v]) => [k, { ...v, key: undefined, from: undefined }])),
        },
      }));
      if (current()) await get().segmentPrepare();
    },

    async segmentPrepare() {
      const item = current();
      if (!item) {
        await ensureLoaded();
        return;
      }
      await ensureEncoded(item);
    },

    segmentClick: (x, y, label) => interact((l) => ({ ...l, points: [...l.points, { x, y, label }] })),

    segmentBox: (box) => interact((l) => ({ ...l, box: [Math.min(box[0], box[2]), Math.min(box[1], box[3]), Math.max(box[0], box[2]), Math.max(box[1], box[3])] })),

    segmentHover(x, y) {
      const item = current();
      const s = get().segment;
      if (!item || !s.hoverPreview) return;
      const st = s.byImage[item.id];
      if (!st?.key || st.encoding) return;
      const layer = activeOf(st);
      if (layer.box && !layer.points.length && !s.info?.supportsBox) return;
      hover.request({ imageId: item.id, key: st.key, prompt: promptFor(layer, { x, y, label: 1 }) });
    },

    segmentHoverEnd() {
      hover.cancelPending();
      patchSeg({ preview: undefined });
    },

    segmentSet(p) {
      patchSeg(p);
      if (p.hoverPreview === false) patchSeg({ preview: undefined });
    },

    segmentEnsureLoaded: ensureLoaded,

    async segmentDecodeLogits(prompt, multimask = true) {
      const item = current();
      if (!item) return undefined;
      const key = await ensureEncoded(item);
      if (!key) return undefined;
      const out = await engine().decode(req()!, key, prompt, { logits: true, multimask });
      if (!out.ok) {
        get().alert(out.message);
        return undefined;
      }
      return out.value;
    },
  };
};

export { histogram01, LUNGS };
export { worstCases as worstCasesOf } from '../lib/segment';
