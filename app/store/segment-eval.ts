/**
 * Segment folder evaluation: a folder in the cxr-lung-masks layout (images/, masks/<name>_mask.png, boxes.json) is
 * segmented lung by lung from box or point prompts and scored against the true masks (app/lib/segment/eval.ts);
 * a worst case can be opened with its predicted and true masks.
 */
import { rasterToGray, type Raster } from '../lib/imaging/raster';
import { imageName, lungPrompt, LUNGS, parseBoxes, scoreLung, splitLungs, summarizeEval, type Box, type EvalPrompt, type EvalRow, type EvalSummary } from '../lib/segment';
import { transfer } from '../platform/browser/workers';
import { segmentAccess, segmentEntry } from './segment-shared';
import type { SliceCreator } from './state';

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

export interface SegmentEvalSlice {
  segmentEvalFolder(files: { name: string; path: string; blob: Blob }[], prompt?: EvalPrompt): Promise<void>;
  segmentEvalShow(name: string, lung: (typeof LUNGS)[number]): Promise<void>;
}

export const createSegmentEvalSlice: SliceCreator<SegmentEvalSlice> = (set, get) => {
  const { req, engine } = segmentAccess(set, get);
  // Folder-evaluation inputs of the current run (blobs, not decoded: decoded again when a worst case is opened).
  let evalFiles = new Map<string, { image: { blob: Blob }; mask: { blob: Blob } }>();
  let evalBoxes: Record<string, Record<(typeof LUNGS)[number], Box>> = {};

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

  return {
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
      if (!(await get().segmentEnsureLoaded())) return;
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

    async segmentEvalShow(name, lung) {
      try {
        const r = await evalOne(name, get().segment.eval.prompt);
        set((s) => ({ segment: { ...s.segment, eval: { ...s.segment.eval, detail: { name, lung, raster: r.raster, pred: r.pred[lung], truth: r.truth[lung], dice: r.row.lungs[lung].dice } } } }));
      } catch (e) {
        get().alert(`${name}: ${(e as Error).message}`);
      }
    },
  };
};
