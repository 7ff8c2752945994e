/**
 * Segment slice: the chosen SAM-family model, its load, each image's embedding, the prompts and decodes of the
 * active layer (one undo step each), and the hover preview (coalesced: a burst of pointer moves costs at most one
 * extra decode). Layers and undo/redo: segment-layers.ts; exports: segment-export.ts; the folder evaluation:
 * segment-eval.ts. Talks to workers/sam.worker.ts; all geometry and mask logic is in app/lib/sam.
 */
import {
  historyPush,
  LatestOnly,
  LUNGS,
  histogram01,
  lungSideOf,
  type Box,
  type History,
  type PromptPoint,
  type SamPrompt,
} from '../lib/sam';
import type { PreviewImage, SamModelInfo } from '../lib/sam/engine';
import type { Decoded } from '../lib/sam/pipeline';
import { entrySource } from '../lib/hub/source';
import { errorMessage } from '../lib/runtime/outcome';
import { downloadedVariants } from '../lib/models/model-cache';
import { decodePrompt, encodeImage, loadSegmentModel } from '../services/sam';
import { guarded } from './alerts';
import type { ImageItem } from './images';
import type { SegEvalState } from './sam-eval';
import { segImageKey, segmentAccess } from './sam-access';
import type { SliceCreator } from './state';

export type { SegEvalState };
export { currentSegImage, layerMask, segImageKey } from './sam-access';

export interface SegLayer {
  id: number;
  label: string;
  /** The label is automatic: named after the lung side of the first mask (until the user renames it). */
  autoLabel?: boolean;
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
  /** Model request the key belongs to (model | variants | backend | source): another one means encoding again. */
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

export interface SamState {
  info?: SamModelInfo;
  loading: boolean;
  loadMessage?: string;
  loadError?: string;
  /** Per image and frame (segImageKey: `${imageId}#f${frame}`). */
  byImage: Record<string, SegImageState>;
  tool: 'click' | 'box';
  refine: boolean;
  hoverPreview: boolean;
  opacity: number;
  /** The hover preview, painted in the segment worker (RGBA at the image's size) for the image+frame `imageId`. */
  preview?: { imageId: string } & PreviewImage;
  /** Decodes run for the hover preview (the runtime panel and tests read it). */
  hoverDecodes: number;
  /** segmentPrewarm is creating / warming the sessions (bench-perceived waits for it). */
  prewarming?: boolean;
  /** The Segment tab is shown: the other tabs' idle prewarms wait (whenSegmentClosed) instead of taking the cores. */
  tabOpen?: boolean;
  eval: SegEvalState;
  layerSeq: number;
}

export interface SamSlice {
  sam: SamState;
  /** After chooseModel('sam', id): the old model's embeddings are dropped and the current image is prepared again. */
  samModelChanged(): Promise<void>;
  /** Load the model and encode the current image (embedding from the cache when there is one). */
  segmentPrepare(): Promise<void>;
  /**
   * The Segment tab was opened: when the chosen model's planned variant is already downloaded, create its sessions
   * and warm the decoder and (no image open yet) the encoder, so the first box after an image opens costs one encode
   * and one decode. Never downloads (a model not cached waits for the user's first image); silent on failure (the
   * first real use reports it).
   */
  segmentPrewarm(): Promise<void>;
  /** The Segment tab was shown (true) or left (false). */
  segmentTabShown(open: boolean): void;
  /**
   * Resolves once the Segment tab is not shown (at once when it is not): the classifier / CLIP idle prewarm awaits
   * it before each session, so it never competes for the 2 cores with the tab's encode and first decode.
   */
  whenSegmentClosed(): Promise<void>;
  segmentClick(x: number, y: number, label: 0 | 1): Promise<void>;
  segmentBox(box: Box): Promise<void>;
  segmentHover(x: number, y: number): void;
  segmentHoverEnd(): void;
  segmentSet(p: Partial<Pick<SamState, 'tool' | 'refine' | 'hoverPreview' | 'opacity'>>): void;
  /** Load the chosen model's sessions (once per model request); false, with an alert, when that fails. */
  segmentEnsureLoaded(): Promise<boolean>;
  /**
   * One decode of `prompt` on the current image returning the logits at the original size (no undo step): for
   * parity checks and console scripts.
   */
  segmentDecodeLogits(prompt: SamPrompt, multimask?: boolean): Promise<Decoded | undefined>;
}

/** Colour of the hover preview (yellow): painted in the worker. */
const PREVIEW_COLOR = [250, 204, 21] as const;

/** The layer's label after a decode: an automatic label follows the mask's lung side (unique among the layers). */
function autoLabel(layer: SegLayer, layers: SegLayer[], item: ImageItem): string {
  const mask = layer.masks?.[layer.selected];
  if (!layer.autoLabel || !mask?.length) return layer.label;
  const side = lungSideOf(mask, item.raster.width, item.raster.height, item.dicom?.metadata.ViewPosition);
  if (!side) return layer.label;
  const taken = new Set(layers.filter((l) => l.id !== layer.id).map((l) => l.label));
  for (let n = 1; ; n++) if (!taken.has(n === 1 ? side : `${side} ${n}`)) return n === 1 ? side : `${side} ${n}`;
}

export const createSamSlice: SliceCreator<SamSlice> = (set, get, api) => {
  const { req, tagOf, engine, current, patchSeg, patchImage, imageState, activeOf } = segmentAccess(set, get);
  let loadPromise: Promise<boolean> | null = null;
  let loadedFor: string | null = null;

  async function ensureLoaded(): Promise<boolean> {
    const r = req();
    if (!r) return false;
    const tag = tagOf(r);
    if (loadedFor === tag && get().sam.info) return true;
    if (loadPromise && loadedFor === tag) return loadPromise;
    loadedFor = tag;
    loadPromise = (async () => {
      patchSeg({ loading: true, loadError: undefined, loadMessage: 'checking model files' });
      try {
        // download (verified) + the family's session, through the app's inference service
        const info = await loadSegmentModel(get().inference, r, (m) => patchSeg({ loadMessage: m }));
        if (loadedFor !== tag) return false; // another model was chosen meanwhile: its own load reports
        patchSeg({ info, loading: false, loadMessage: undefined });
        get().modelRan(r.entry.id, info.report);
        return true;
      } catch (e) {
        const message = errorMessage(e);
        if (loadedFor === tag) {
          patchSeg({ loading: false, loadError: message, info: undefined, loadMessage: undefined });
          loadedFor = null;
        }
        get().alert(message);
        return false;
      }
    })();
    return loadPromise;
  }

  /** The embedding key of the image's current frame for the current model; null (alert shown) when it failed. */
  async function ensureEncoded(item: ImageItem): Promise<string | null> {
    const st = imageState(item);
    const sk = segImageKey(item);
    const r0 = req();
    if (st.key && !st.encoding && r0 && st.keyTag === tagOf(r0)) return st.key;
    if (!(await ensureLoaded())) return null;
    const r = req();
    if (!r) return null;
    const tag = tagOf(r);
    patchImage(sk, { encoding: true, error: undefined });
    try {
      const enc = await encodeImage(engine(), r, item.raster);
      const now = req();
      if (!now || tagOf(now) !== tag) {
        patchImage(sk, { encoding: false }); // the model changed meanwhile: this embedding is not the current one
        return null;
      }
      patchImage(sk, { encoding: false, key: enc.key, keyTag: tag, from: enc.from, encodeMs: enc.encodeMs, resident: enc.resident });
      return enc.key;
    } catch (e) {
      const message = errorMessage(e);
      patchImage(sk, { encoding: false, error: message });
      get().alert(message);
      return null;
    }
  }

  function promptFor(layer: SegLayer, extra?: PromptPoint): SamPrompt {
    const s = get().sam;
    const refine = s.refine && s.info?.supportsMaskInput && layer.lowRes?.[layer.selected];
    return { points: extra ? [...layer.points, extra] : layer.points, box: layer.box, maskInput: refine ? layer.lowRes![layer.selected] : undefined };
  }

  /**
   * Apply a new prompt to the active layer, decode, and record one undo step. The result lands on the image and
   * frame it was asked for, and only if the model is still the one it came from (a late result is dropped).
   */
  // Clicks and boxes apply one after another, each to the layer as the previous one left it: two quick clicks (a
  // double click) are two points, never one overwriting the other.
  let interactions: Promise<unknown> = Promise.resolve();
  function interact(change: (l: SegLayer) => SegLayer): Promise<void> {
    const item = current();
    const run = interactions.then(() => interactOn(item, change));
    interactions = run.catch(() => undefined);
    return run;
  }

  async function interactOn(item: ImageItem | undefined, change: (l: SegLayer) => SegLayer): Promise<void> {
    if (!item) return;
    const sk = segImageKey(item);
    const key = await ensureEncoded(item);
    if (!key) return;
    const r = req();
    if (!r) return;
    const tag = tagOf(r);
    const st = get().sam.byImage[sk];
    const before = activeOf(st);
    const layer = change(before);
    patchImage(sk, { decoding: true });
    let d: Decoded;
    try {
      d = await decodePrompt(engine(), r, key, promptFor({ ...layer, lowRes: before.lowRes, selected: before.selected }), { masks: 'best' });
    } catch (e) {
      patchImage(sk, { decoding: false, error: errorMessage(e) });
      get().alert(errorMessage(e));
      return;
    }
    const now = get().sam.byImage[sk];
    const cur = req();
    if (!now || !cur || tagOf(cur) !== tag || now.key !== key) {
      if (now) patchImage(sk, { decoding: false });
      return;
    }
    const decoded: SegLayer = { ...layer, masks: d.masks, iou: d.iou, lowRes: d.lowRes, selected: d.best };
    const next: SegLayer = { ...decoded, label: autoLabel(decoded, now.history.present, item) };
    patchImage(sk, {
      decoding: false,
      decodeMs: d.decodeMs,
      error: undefined,
      history: historyPush(now.history, now.history.present.map((l) => (l.id === next.id ? next : l))),
    });
    patchSeg({ preview: undefined });
  }

  const hover = new LatestOnly<{ imageKey: string; tag: string; key: string; prompt: SamPrompt }, SamState['preview'] | null>(
    async ({ imageKey, tag, key, prompt }) => {
      const r = req();
      if (!r || tagOf(r) !== tag) return null;
      const style = { color: PREVIEW_COLOR, alpha: Math.min(0.6, get().sam.opacity * 0.9) };
      const out = await engine().previewDecode(r, key, prompt, style);
      set((s) => ({ sam: { ...s.sam, hoverDecodes: s.sam.hoverDecodes + 1 } }));
      return out.ok ? { imageId: imageKey, ...out.value } : null;
    },
    (res) => {
      // shown only on the image and frame it was computed for, with the same model
      const item = current();
      if (res && get().sam.hoverPreview && item && segImageKey(item) === res.imageId) patchSeg({ preview: res });
    },
  );

  return {
    sam: {
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

    samModelChanged: guarded(get, 'Changing the segment model failed', async () => {
      // Embeddings belong to a model: the per-image keys are dropped (masks stay; they are pixels).
      set((s) => ({
        sam: {
          ...s.sam,
          info: undefined,
          loadError: undefined,
          preview: undefined,
          byImage: Object.fromEntries(Object.entries(s.sam.byImage).map(([k, v]) => [k, { ...v, key: undefined, keyTag: undefined, from: undefined }])),
        },
      }));
      if (current()) await get().segmentPrepare();
    }),

    segmentPrepare: guarded(get, 'Preparing the image failed', async () => {
      const item = current();
      if (!item) {
        await ensureLoaded();
        return;
      }
      await ensureEncoded(item);
    }),

    async segmentPrewarm() {
      const r = req();
      if (!r || get().sam.loading || (loadedFor === tagOf(r) && get().sam.info)) return;
      try {
        const plan = await get().inference.plan(r);
        if (!downloadedVariants(r.entry, entrySource(r.entry, get().source), get().stored).includes(plan.dtype)) return;
        patchSeg({ prewarming: true });
        if (!(await ensureLoaded()) || current()) return; // an image opened meanwhile: its encode is the warm-up
        // a second of quiet first: an image being opened right now must not queue behind the blank-image encode
        await new Promise((res) => setTimeout(res, 1000));
        if (current()) return;
        await engine().prewarm(r);
      } catch {
        /* prewarming is best effort */
      } finally {
        if (get().sam.prewarming) patchSeg({ prewarming: false });
      }
    },

    segmentTabShown(open) {
      if (!!get().sam.tabOpen !== open) patchSeg({ tabOpen: open });
    },

    whenSegmentClosed() {
      if (!get().sam.tabOpen) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const stop = api.subscribe((s) => {
          if (s.sam.tabOpen) return;
          stop();
          resolve();
        });
      });
    },

    segmentClick: guarded(get, 'Segmentation failed', (x: number, y: number, label: 0 | 1) => interact((l) => ({ ...l, points: [...l.points, { x, y, label }] }))),

    segmentBox: guarded(get, 'Segmentation failed', (box: Box) =>
      interact((l) => ({ ...l, box: [Math.min(box[0], box[2]), Math.min(box[1], box[3]), Math.max(box[0], box[2]), Math.max(box[1], box[3])] })),
    ),

    segmentHover(x, y) {
      const item = current();
      const s = get().sam;
      if (!item || !s.hoverPreview) return;
      const imageKey = segImageKey(item);
      const st = s.byImage[imageKey];
      if (!st?.key || st.encoding || !st.keyTag) return;
      const layer = activeOf(st);
      if (layer.box && !layer.points.length && !s.info?.supportsBox) return;
      hover.request({ imageKey, tag: st.keyTag, key: st.key, prompt: promptFor(layer, { x, y, label: 1 }) });
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

    segmentDecodeLogits: guarded(get, 'Segmentation failed', async (prompt: SamPrompt, multimask = true) => {
      const item = current();
      if (!item) return undefined;
      const key = await ensureEncoded(item);
      const r = req();
      if (!key || !r) return undefined;
      return decodePrompt(engine(), r, key, prompt, { logits: true, multimask });
    }),
  };
};

export { histogram01, LUNGS };
export { worstCases as worstCasesOf } from '../lib/sam';
