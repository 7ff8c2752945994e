/**
 * Segment slice: the chosen SAM-family model, per-image labelled masks with undo/redo, the hover preview
 * (coalesced: a burst of pointer moves costs at most one extra decode), exports, and the folder evaluation.
 * Talks to workers/segment.worker.ts; all geometry and mask logic is in app/lib/segment.
 */
import type { ModelEntry } from '../lib/models/manifest-types';
import {
  historyInit,
  historyPush,
  historyRedo,
  historyUndo,
  LatestOnly,
  longestSideShape,
  thresholdLogits,
  upscaleMaskLogits,
  LUNGS,
  histogram01,
  imageName,
  lungPrompt,
  maskToPng,
  maskToPolygons,
  parseBoxes,
  scoreLung,
  splitLungs,
  summarizeEval,
  type Box,
  type EvalPrompt,
  type EvalRow,
  type EvalSummary,
  type History,
  type PromptPoint,
  type Ring,
  type SamPrompt,
} from '../lib/segment';
import { buildDicomSeg, type SegSourceAttributes } from '../lib/segment/dicom-seg';
import type { SegmentModelInfo } from '../lib/segment/engine';
import type { Decoded } from '../lib/segment/pipeline';
import type { Raster } from '../lib/imaging/raster';
import { rasterToGray } from '../lib/imaging/raster';
import { errorMessage } from '../lib/runtime/outcome';
import { defaultSegmentModelId } from '../lib/segment/models';
import { transfer } from '../platform/browser/workers';
import type { ImageItem } from './images';
import type { AppState, SliceCreator } from './state';

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

export interface SegEvalState {
  running: boolean;
  prompt: EvalPrompt;
  rows: EvalRow[];
  total: number;
  summary?: EvalSummary;
  error?: string;
  /** Selected worst case: the image with predicted and true masks. */
  detail?: { name: string; lung: (typeof LUNGS)[number]; raster: Raster; pred: Uint8Array; truth: Uint8Array; dice: number };
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
  segmentSelectCandidate(i: number): void;
  segmentUndo(): void;
  segmentRedo(): void;
  segmentClear(): void;
  segmentAddLayer(label?: string): void;
  segmentSetActiveLayer(id: number): void;
  segmentRenameLayer(id: number, label: string): void;
  segmentSet(p: Partial<Pick<SegmentState, 'tool' | 'refine' | 'hoverPreview' | 'opacity'>>): void;
  /** Files to save: the caller (a view) triggers the download. */
  segmentExport(kind: 'png' | 'polygons' | 'dicom-seg'): { name: string; blob: Blob }[];
  segmentEvalFolder(files: { name: string; path: string; blob: Blob }[], prompt?: EvalPrompt): Promise<void>;
  segmentEvalShow(name: string, lung: (typeof LUNGS)[number]): Promise<void>;
  /**
   * One decode of `prompt` on the current image returning the logits at the original size (no undo step): for
   * parity checks and console scripts.
   */
  segmentDecodeLogits(prompt: SamPrompt, multimask?: boolean): Promise<Decoded | undefined>;
}

const COLORS: [number, number, number][] = [
  [255, 80, 80],
  [80, 160, 255],
  [80, 220, 120],
  [255, 200, 60],
  [200, 100, 255],
  [0, 220, 220],
];
const DEFAULT_LABELS = ['right lung', 'left lung'];

/** The chosen segment model, else the default one (the project's trained model when the manifest has it). */
export function segmentEntry(s: Pick<AppState, 'manifest' | 'segment'>): ModelEntry | undefined {
  const models = s.manifest?.models ?? [];
  const id = models.some((m) => m.id === s.segment.modelId && m.family === 'sam') ? s.segment.modelId : defaultSegmentModelId(models);
  return models.find((m) => m.id === id);
}

export { defaultSegmentModelId as defaultSegmentModel } from '../lib/segment/models';

/** The selected mask of a layer, if it has one (candidates not upscaled yet are empty). */
export function layerMask(l: SegLayer): Uint8Array | undefined {
  const m = l.masks?.[l.selected];
  return m && m.length ? m : undefined;
}

function newLayer(id: number, index: number, label?: string): SegLayer {
  return { id, label: label ?? DEFAULT_LABELS[index] ?? `mask ${index + 1}`, color: COLORS[index % COLORS.length], points: [], selected: 0 };
}

function download(name: string, bytes: Uint8Array | string, type: string) {
  return { name, blob: new Blob([bytes as BlobPart], { type }) };
}

export const createSegmentSlice: SliceCreator<SegmentSlice> = (set, get) => {
  const req = () => {
    const entry = segmentEntry(get());
    return entry ? get().modelRequest(entry) : null;
  };
  const tagOf = (r: NonNullable<ReturnType<typeof req>>) => `${r.entry.id}|${r.override}|${JSON.stringify(r.source.kind === 'local' ? { kind: 'local', name: r.source.name } : r.source)}`;
  const engine = () => get().workers.segment();
  const current = (): ImageItem | undefined => get().images.find((i) => i.id === get().currentId);
  const patchSeg = (p: Partial<SegmentState>) => set((s) => ({ segment: { ...s.segment, ...p } }));
  const patchImage = (id: string, p: Partial<SegImageState>) =>
    set((s) => {
      const cur = s.segment.byImage[id];
      return cur ? { segment: { ...s.segment, byImage: { ...s.segment.byImage, [id]: { ...cur, ...p } } } } : {};
    });
  const imageState = (item: ImageItem): SegImageState => {
    const have = get().segment.byImage[item.id];
    if (have) return have;
    const id = get().segment.layerSeq + 1;
    const st: SegImageState = { encoding: false, width: item.raster.width, height: item.raster.height, history: historyInit([newLayer(id, 0)]), activeLayer: id, decoding: false };
    set((s) => ({ segment: { ...s.segment, layerSeq: id, byImage: { ...s.segment.byImage, [item.id]: st } } }));
    return st;
  };
  const activeOf = (st: SegImageState) => st.history.present.find((l) => l.id === st.activeLayer) ?? st.history.present[0];

  // Folder-evaluation inputs of the current run (blobs, not decoded: decoded again when a worst case is opened).
  let evalFiles = new Map<string, { image: { blob: Blob }; mask: { blob: Blob } }>();
  let evalBoxes: Record<string, Record<(typeof LUNGS)[number], Box>> = {};
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
      eval: { running: false, prompt: 'box', rows: [], total: 0 },
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

    segmentSelectCandidate(i) {
      const item = current();
      if (!item) return;
      const st = get().segment.byImage[item.id];
      const l = activeOf(st);
      if (!l.masks?.[i] || !l.lowRes?.[i]) return;
      let masks = l.masks;
      if (!masks[i].length) {
        // upscaled on demand: the decode only upscaled the best candidate
        const size = get().segment.info?.imageSize;
        if (!size) return;
        const m = Math.round(Math.sqrt(l.lowRes[i].length));
        masks = masks.map((x, k) => (k === i ? thresholdLogits(upscaleMaskLogits(l.lowRes![i], m, longestSideShape(item.raster.width, item.raster.height, size))) : x));
      }
      patchImage(item.id, { history: historyPush(st.history, st.history.present.map((x) => (x.id === l.id ? { ...x, masks, selected: i } : x))) });
    },

    segmentUndo() {
      const item = current();
      const st = item && get().segment.byImage[item.id];
      if (st) patchImage(item.id, { history: historyUndo(st.history) });
    },

    segmentRedo() {
      const item = current();
      const st = item && get().segment.byImage[item.id];
      if (st) patchImage(item.id, { history: historyRedo(st.history) });
    },

    segmentClear() {
      const item = current();
      const st = item && get().segment.byImage[item.id];
      if (!st) return;
      const l = activeOf(st);
      patchImage(item.id, { history: historyPush(st.history, st.history.present.map((x) => (x.id === l.id ? { ...newLayer(x.id, 0, x.label), color: x.color } : x))) });
      patchSeg({ preview: undefined });
    },

    segmentAddLayer(label) {
      const item = current();
      if (!item) return;
      const st = imageState(item);
      const id = get().segment.layerSeq + 1;
      const layer = newLayer(id, st.history.present.length, label);
      patchSeg({ layerSeq: id });
      patchImage(item.id, { history: historyPush(st.history, [...st.history.present, layer]), activeLayer: id });
    },

    segmentSetActiveLayer(id) {
      const item = current();
      if (item) patchImage(item.id, { activeLayer: id });
    },

    segmentRenameLayer(id, label) {
      const item = current();
      const st = item && get().segment.byImage[item.id];
      if (st) patchImage(item.id, { history: { ...st.history, present: st.history.present.map((l) => (l.id === id ? { ...l, label } : l)) } });
    },

    segmentSet(p) {
      patchSeg(p);
      if (p.hoverPreview === false) patchSeg({ preview: undefined });
    },

    segmentExport(kind) {
      const item = current();
      const st = item && get().segment.byImage[item.id];
      if (!item || !st) return [];
      const layers = st.history.present.filter((l) => layerMask(l));
      if (!layers.length) {
        get().alert('Nothing to export: segment something first');
        return [];
      }
      const { width: w, height: h } = item.raster;
      const stem = item.name.replace(/\.[^.]+$/, '');
      const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
      const entry = segmentEntry(get());
      if (kind === 'png') return layers.map((l) => download(`${stem}_${slug(l.label)}_mask.png`, maskToPng(layerMask(l)!, w, h), 'image/png'));
      if (kind === 'polygons') {
        const doc = {
          image: item.name,
          width: w,
          height: h,
          coordinates: 'image pixels, origin top-left, x right, y down; vertices at pixel corners; fill even-odd',
          model: entry ? { id: entry.id, weights: entry.weights } : undefined,
          masks: layers.map((l) => ({ label: l.label, predicted_iou: l.iou?.[l.selected], polygons: maskToPolygons(layerMask(l)!, w, h) as Ring[] })),
        };
        return [download(`${stem}_polygons.json`, JSON.stringify(doc), 'application/json')];
      }
      const d = item.dicom;
      if (!d) {
        get().alert('DICOM SEG export needs a DICOM image');
        return [];
      }
      try {
        const src: SegSourceAttributes = {
          Rows: d.height,
          Columns: d.width,
          SOPClassUID: d.metadata.SOPClassUID,
          PixelSpacing: d.metadata.PixelSpacing,
          ImagerPixelSpacing: d.metadata.ImagerPixelSpacing,
          ...d.identifying,
        };
        const bytes = buildDicomSeg(src, layers.map((l) => ({ label: l.label, mask: layerMask(l)! })), {
          algorithmName: entry ? `${entry.id} (${entry.weights})` : 'SAM',
          includeIdentifying: get().viewer.showIdentifying,
        });
        return [download(`${stem}_seg.dcm`, bytes, 'application/dicom')];
      } catch (e) {
        get().alert(`DICOM SEG export failed: ${(e as Error).message}`);
        return [];
      }
    },

    async segmentEvalFolder(files, prompt = 'box') {
      const ev = (p: Partial<SegEvalState>) => set((s) => ({ segment: { ...s.segment, eval: { ...s.segment.eval, ...p } } }));
      const boxesFile = files.find((f) => f.path.split('/').pop() === 'boxes.json');
      const images = files.filter((f) => /(^|\/)images\/[^/]+\.(png|jpe?g)$/i.test(f.path));
      const masks = new Map(files.filter((f) => /(^|\/)masks\/[^/]+_mask\.png$/i.test(f.path)).map((f) => [f.name.replace(/_mask\.png$/i, ''), f]));
      if (!boxesFile || !images.length || !masks.size) {
        ev({ error: 'Not an evaluation folder: it needs images/, masks/<name>_mask.png and boxes.json (the cxr-lung-masks layout)', rows: [], summary: undefined });
        get().alert('Not an evaluation folder: it needs images/, masks/<name>_mask.png and boxes.json');
        return;
      }
      let boxes;
      try {
        boxes = parseBoxes(JSON.parse(await boxesFile.blob.text()));
      } catch (e) {
        ev({ error: `boxes.json: ${(e as Error).message}` });
        return;
      }
      if (!(await ensureLoaded())) return;
      const todo = images.filter((f) => boxes.boxes[imageName(f.path)] && masks.has(imageName(f.path)));
      const skipped = [...boxes.skipped, ...images.filter((f) => !todo.includes(f)).map((f) => imageName(f.path))];
      ev({ running: true, prompt, rows: [], total: todo.length, summary: undefined, error: undefined, detail: undefined });
      evalFiles = new Map(todo.map((f) => [imageName(f.path), { image: f, mask: masks.get(imageName(f.path))! }]));
      evalBoxes = boxes.boxes;
      const rows: EvalRow[] = [];
      for (const f of todo) {
        const name = imageName(f.path);
        try {
          const r = await evalOne(name, prompt);
          rows.push(r.row);
          ev({ rows: [...rows] });
        } catch (e) {
          skipped.push(name);
          get().alert(`${name}: ${(e as Error).message}`);
        }
      }
      const entry = segmentEntry(get());
      ev({ running: false, summary: summarizeEval(entry?.id ?? '?', prompt, rows, skipped) });
    },

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

    async segmentEvalShow(name, lung) {
      try {
        const r = await evalOne(name, get().segment.eval.prompt);
        set((s) => ({ segment: { ...s.segment, eval: { ...s.segment.eval, detail: { name, lung, raster: r.raster, pred: r.pred[lung], truth: r.truth[lung], dice: r.row.lungs[lung].dice } } } }));
      } catch (e) {
        get().alert(`${name}: ${(e as Error).message}`);
      }
    },
  };

  async function decodeBlob(blob: Blob): Promise<Raster> {
    const buf = await blob.arrayBuffer();
    const out = await get().workers.imaging().decode(transfer(buf, [buf]));
    if (!out.ok) throw new Error(out.message);
    return out.image.raster;
  }

  async function evalOne(name: string, prompt: EvalPrompt) {
    const f = evalFiles.get(name);
    const b = evalBoxes[name];
    if (!f || !b) throw new Error('not in the evaluated folder');
    const raster = await decodeBlob(f.image.blob);
    const maskR = await decodeBlob(f.mask.blob);
    if (maskR.width !== raster.width || maskR.height !== raster.height) throw new Error(`mask is ${maskR.width}×${maskR.height}, image ${raster.width}×${raster.height}`);
    const truth = splitLungs(rasterToGray(maskR), raster.width, raster.height, b);
    const r = req()!;
    const enc = await engine().encode(r, raster);
    if (!enc.ok) throw new Error(enc.message);
    const row: EvalRow = { image: name, width: raster.width, height: raster.height, lungs: {} as EvalRow['lungs'] };
    const pred = {} as Record<(typeof LUNGS)[number], Uint8Array>;
    for (const lung of LUNGS) {
      const d = await engine().decode(r, enc.value.key, lungPrompt(prompt, b[lung]), { masks: 'best' });
      if (!d.ok) throw new Error(d.message);
      pred[lung] = d.value.masks[d.value.best];
      row.lungs[lung] = { ...scoreLung(pred[lung], truth[lung], truth.ignore), predictedIou: d.value.iou[d.value.best] };
    }
    return { row, raster, pred, truth };
  }
};

export { histogram01, LUNGS };
export { worstCases as worstCasesOf } from '../lib/segment';
