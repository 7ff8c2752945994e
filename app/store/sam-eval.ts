/**
 * Segment folder evaluation: a folder in the cxr-lung-masks layout (images/, masks/<name>_mask.png, boxes.json) is
 * segmented lung by lung from box or point prompts and scored against the true masks by the same operation as
 * `npm run segment-eval` (app/services/sam.ts: evaluateImage); a worst case can be opened with its predicted and
 * true masks. An image that cannot be read or scored is a failed row (named, with its cause) and the run goes on;
 * a second folder dropped while one runs is refused with a message.
 */
import type { Raster } from '../lib/imaging/raster';
import { errorMessage } from '../lib/runtime/outcome';
import { imageName, LUNGS, parseBoxes, summarizeEval, type Box, type EvalFailure, type EvalPrompt, type EvalRow, type EvalSummary } from '../lib/sam';
import { transfer } from '../platform/browser/workers';
import { evalFolderPlan, evaluateImage } from '../services/sam';
import { segmentAccess } from './sam-access';
import { chosenModel } from './selectors';
import type { SliceCreator } from './state';

export interface SegEvalState {
  running: boolean;
  prompt: EvalPrompt;
  rows: EvalRow[];
  /** Images that could not be evaluated, with the cause (left out of the summary's statistics). */
  failed: EvalFailure[];
  total: number;
  summary?: EvalSummary;
  error?: string;
  /** Selected worst case: the image with predicted and true masks. */
  detail?: { name: string; lung: (typeof LUNGS)[number]; raster: Raster; pred: Uint8Array; truth: Uint8Array; dice: number };
}

export interface SamEvalSlice {
  segmentEvalFolder(files: { name: string; path: string; blob: Blob }[], prompt?: EvalPrompt): Promise<void>;
  segmentEvalShow(name: string, lung: (typeof LUNGS)[number]): Promise<void>;
}

/** The message shown when a folder is dropped while another one is being evaluated. */
export const EVAL_BUSY_MESSAGE = 'An evaluation is running: wait for it to finish before evaluating another folder';

export const createSamEvalSlice: SliceCreator<SamEvalSlice> = (set, get) => {
  const { req, engine } = segmentAccess(set, get);
  // Folder-evaluation inputs of the current run (blobs, not decoded: decoded again when a worst case is opened).
  let evalFiles = new Map<string, { image: { blob: Blob }; mask: { blob: Blob } }>();
  let evalBoxes: Record<string, Record<(typeof LUNGS)[number], Box>> = {};
  const ev = (p: Partial<SegEvalState>) => set((s) => ({ sam: { ...s.sam, eval: { ...s.sam.eval, ...p } } }));

  async function decodeBlob(blob: Blob): Promise<Raster> {
    const buf = await blob.arrayBuffer();
    const out = await get().workers.imaging().decode(transfer(buf, [buf]));
    if (!out.ok) throw new Error(out.message);
    return out.image.raster;
  }

  async function evalOne(name: string, prompt: EvalPrompt) {
    const f = evalFiles.get(name);
    const boxes = evalBoxes[name];
    if (!f || !boxes) throw new Error('not in the evaluated folder');
    const r = req();
    if (!r) throw new Error('no segment model in the model list');
    const image = await decodeBlob(f.image.blob);
    const mask = await decodeBlob(f.mask.blob);
    return { ...(await evaluateImage(engine(), r, { name, image, mask, boxes, prompt })), raster: image };
  }

  async function runFolder(files: { name: string; path: string; blob: Blob }[], prompt: EvalPrompt) {
    const boxesFile = files.find((f) => f.path.split('/').pop() === 'boxes.json');
    const images = files.filter((f) => /(^|\/)images\/[^/]+\.(png|jpe?g)$/i.test(f.path));
    const masks = new Map(files.filter((f) => /(^|\/)masks\/[^/]+_mask\.png$/i.test(f.path)).map((f) => [f.name.replace(/_mask\.png$/i, ''), f]));
    if (!boxesFile || !images.length || !masks.size) {
      ev({ running: false, error: 'Not an evaluation folder: it needs images/, masks/<name>_mask.png and boxes.json (the cxr-lung-masks layout)', rows: [], failed: [], summary: undefined });
      get().alert('Not an evaluation folder: it needs images/, masks/<name>_mask.png and boxes.json');
      return;
    }
    let boxes;
    try {
      boxes = parseBoxes(JSON.parse(await boxesFile.blob.text()));
    } catch (e) {
      ev({ running: false, error: `boxes.json: ${errorMessage(e)}` });
      return;
    }
    if (!(await get().segmentEnsureLoaded())) {
      ev({ running: false });
      return;
    }
    const { todo, skipped } = evalFolderPlan(images, boxes.boxes, new Set(masks.keys()), boxes.skipped);
    ev({ prompt, rows: [], failed: [], total: todo.length, summary: undefined, error: undefined, detail: undefined });
    evalFiles = new Map(todo.map((f) => [imageName(f.path), { image: f, mask: masks.get(imageName(f.path))! }]));
    evalBoxes = boxes.boxes;
    const rows: EvalRow[] = [];
    const failed: EvalFailure[] = [];
    for (const f of todo) {
      const name = imageName(f.path);
      try {
        rows.push((await evalOne(name, prompt)).row);
      } catch (e) {
        failed.push({ image: name, message: errorMessage(e) });
      }
      ev({ rows: [...rows], failed: [...failed] });
    }
    const entry = chosenModel(get(), 'sam');
    if (failed.length) get().alert(`${failed.length} of ${todo.length} images could not be evaluated (first: ${failed[0].image}: ${failed[0].message})`);
    ev({ summary: summarizeEval(entry?.id ?? '?', prompt, rows, skipped, failed) });
  }

  return {
    async segmentEvalFolder(files, prompt = 'box') {
      if (get().sam.eval.running) {
        get().alert(EVAL_BUSY_MESSAGE, 'info');
        return;
      }
      ev({ running: true });
      try {
        await runFolder(files, prompt);
      } catch (e) {
        const message = `Evaluation failed: ${errorMessage(e)}`;
        ev({ error: message });
        get().alert(message);
      } finally {
        ev({ running: false });
      }
    },

    async segmentEvalShow(name, lung) {
      try {
        const r = await evalOne(name, get().sam.eval.prompt);
        ev({ detail: { name, lung, raster: r.raster, pred: r.pred[lung], truth: r.truth[lung], dice: r.row.lungs[lung].dice } });
      } catch (e) {
        get().alert(`${name}: ${errorMessage(e)}`);
      }
    },
  };
};
