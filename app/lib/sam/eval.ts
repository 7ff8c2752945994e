/**
 * Dice / IoU evaluation on a folder in the layout of ../shared/data/cxr-lung-masks: images/<name>.<ext>,
 * masks/<name>_mask.png (255 lung, 127 ignore, 0 background; read as > 191 lung, 64..191 ignore), boxes.json
 * {name: {right_lung: [x0,y0,x1,y1], left_lung: [...]}} in image pixels. Shared by `npm run segment-eval` and the
 * app's evaluation panel; the per-lung split is the one export-scripts' train_segmenter.split_lungs uses.
 */
import { overlap, summarize, type Summary } from './metrics';
import type { SamPrompt } from './layouts';

export const LUNGS = ['right_lung', 'left_lung'] as const;
export type Lung = (typeof LUNGS)[number];
export type Box = [number, number, number, number];
export type EvalPrompt = 'box' | 'center-click';

/** boxes.json → names with both lung boxes (others are listed in `skipped`). */
export function parseBoxes(json: unknown): { boxes: Record<string, Record<Lung, Box>>; skipped: string[] } {
  if (!json || typeof json !== 'object') throw new Error('boxes.json is not a JSON object');
  const boxes: Record<string, Record<Lung, Box>> = {};
  const skipped: string[] = [];
  for (const [name, v] of Object.entries(json as Record<string, Record<string, unknown>>)) {
    const ok = LUNGS.every((l) => Array.isArray(v?.[l]) && (v[l] as unknown[]).length === 4 && (v[l] as unknown[]).every((x) => typeof x === 'number'));
    if (ok) boxes[name] = { right_lung: v.right_lung as Box, left_lung: v.left_lung as Box };
    else skipped.push(name);
  }
  return { boxes, skipped };
}

/**
 * Per-lung truth from one mask (gray, w×h): a lung pixel goes to the lung whose box holds its centre; in both boxes
 * or in neither, to the box whose centre is nearer in x (train_segmenter.split_lungs).
 */
export function splitLungs(gray: ArrayLike<number>, w: number, h: number, boxes: Record<Lung, Box>): { right_lung: Uint8Array; left_lung: Uint8Array; ignore: Uint8Array } {
  const right = new Uint8Array(w * h);
  const left = new Uint8Array(w * h);
  const ignore = new Uint8Array(w * h);
  const [r, l] = [boxes.right_lung, boxes.left_lung];
  const cr = (r[0] + r[2]) / 2;
  const cl = (l[0] + l[2]) / 2;
  const inside = (b: Box, x: number, y: number) => x >= b[0] && x <= b[2] && y >= b[1] && y <= b[3];
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const v = gray[i];
      if (v > 191) {
        const px = x + 0.5, py = y + 0.5;
        const ir = inside(r, px, py), il = inside(l, px, py);
        const toRight = (ir && !il) || (ir === il && Math.abs(px - cr) <= Math.abs(px - cl));
        if (toRight) right[i] = 1;
        else left[i] = 1;
      } else if (v > 63) ignore[i] = 1;
    }
  }
  return { right_lung: right, left_lung: left, ignore };
}

/** The prompt for one lung: its box, or one positive click at the box centre. */
export function lungPrompt(kind: EvalPrompt, box: Box): SamPrompt {
  if (kind === 'box') return { points: [], box };
  return { points: [{ x: (box[0] + box[2]) / 2, y: (box[1] + box[3]) / 2, label: 1 }] };
}

export interface EvalRow {
  image: string;
  width: number;
  height: number;
  lungs: Record<Lung, { dice: number; iou: number; predictedIou: number }>;
}

/** An image of the folder that could not be evaluated (unreadable file, mask of another size, failed decode). */
export interface EvalFailure {
  image: string;
  message: string;
}

export interface EvalSummary {
  model: string;
  prompt: EvalPrompt;
  images: number;
  skipped: string[];
  /** Images that could not be read or segmented: named with the cause, left out of the statistics. */
  failed: EvalFailure[];
  per_lung: Record<Lung, { dice: Omit<Summary, 'min'>; iou: Omit<Summary, 'min'> }>;
}

/** Score a predicted mask against one lung's truth, ignore excluded. */
export function scoreLung(pred: Uint8Array, truth: Uint8Array, ignore: Uint8Array): { dice: number; iou: number } {
  const o = overlap(pred, truth, ignore);
  return { dice: o.dice, iou: o.iou };
}

/** Mean / median / 10th percentile of Dice and IoU per lung over the scored rows; skipped and failed images named. */
export function summarizeEval(model: string, prompt: EvalPrompt, rows: EvalRow[], skipped: string[] = [], failed: EvalFailure[] = []): EvalSummary {
  const per = {} as EvalSummary['per_lung'];
  const strip = (s: Summary) => ({ n: s.n, mean: s.mean, median: s.median, p10: s.p10 });
  for (const l of LUNGS) {
    per[l] = { dice: strip(summarize(rows.map((r) => r.lungs[l].dice))), iou: strip(summarize(rows.map((r) => r.lungs[l].iou))) };
  }
  return { model, prompt, images: rows.length, skipped, failed, per_lung: per };
}

/** Histogram of values in [0,1] with `bins` equal bins (the last closed). */
export function histogram01(values: readonly number[], bins = 20): number[] {
  const h = new Array(bins).fill(0);
  for (const v of values) h[Math.min(bins - 1, Math.max(0, Math.floor(v * bins)))]++;
  return h;
}

/** Rows with the lowest Dice of either lung first. */
export function worstCases(rows: EvalRow[], n = 10): { row: EvalRow; lung: Lung; dice: number }[] {
  return rows
    .flatMap((row) => LUNGS.map((lung) => ({ row, lung, dice: row.lungs[lung].dice })))
    .sort((a, b) => a.dice - b.dice)
    .slice(0, n);
}

/** images/<name>.<ext> → name (the key of boxes.json and of masks/<name>_mask.png). */
export function imageName(path: string): string {
  const base = path.split('/').pop() ?? path;
  return base.replace(/\.[^.]+$/, '');
}
