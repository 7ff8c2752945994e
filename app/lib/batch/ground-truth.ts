/**
 * Ground truth for batches: from folder names (any path segment equal to a label, case-insensitive) or from a CSV
 * with an image column (image_id / path / filename / file / image) and a label column (label / ground_truth / class).
 */
import { parseCsv } from './csv';

export const DEFAULT_LABELS = ['NORMAL', 'PNEUMONIA'];

/** The label named by a directory segment of `path` (nearest to the file wins), or null. */
export function labelFromPath(path: string, labels: string[] = DEFAULT_LABELS): string | null {
  const segs = path.replace(/\\/g, '/').split('/').slice(0, -1);
  for (let i = segs.length - 1; i >= 0; i--) {
    const hit = labels.find((l) => l.toLowerCase() === segs[i].toLowerCase());
    if (hit) return hit;
  }
  return null;
}

const IMAGE_COLS = ['image_id', 'path', 'filename', 'file', 'image', 'file_name', 'name'];
const LABEL_COLS = ['label', 'ground_truth', 'class', 'target', 'diagnosis'];

export interface GroundTruthTable {
  /** keys: normalized relative path, basename, and basename without extension */
  lookup(path: string): string | null;
  size: number;
}

function norm(p: string): string {
  return p.replace(/\\/g, '/').replace(/^\.\//, '').toLowerCase();
}
function base(p: string): string {
  const n = norm(p);
  return n.slice(n.lastIndexOf('/') + 1);
}
function stem(p: string): string {
  const b = base(p);
  const d = b.lastIndexOf('.');
  return d > 0 ? b.slice(0, d) : b;
}

/**
 * Parse a ground-truth CSV. Labels are canonicalized to `labels` case-insensitively (unknown labels kept as
 * written); numeric labels 0/1 map to labels[0]/labels[1].
 */
export function groundTruthFromCsv(text: string, labels: string[] = DEFAULT_LABELS): GroundTruthTable {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new Error('The ground-truth CSV is empty');
  const header = rows[0].map((h) => h.trim().toLowerCase());
  const ic = header.findIndex((h) => IMAGE_COLS.includes(h));
  const lc = header.findIndex((h) => LABEL_COLS.includes(h));
  if (ic < 0) throw new Error(`The ground-truth CSV needs an image column (one of ${IMAGE_COLS.join(', ')}); found ${rows[0].join(', ')}`);
  if (lc < 0) throw new Error(`The ground-truth CSV needs a label column (one of ${LABEL_COLS.join(', ')}); found ${rows[0].join(', ')}`);
  const full = new Map<string, string>(), byBase = new Map<string, string>(), byStem = new Map<string, string>();
  for (const r of rows.slice(1)) {
    const img = (r[ic] ?? '').trim();
    let lab = (r[lc] ?? '').trim();
    if (!img || !lab) continue;
    const canon = labels.find((l) => l.toLowerCase() === lab.toLowerCase());
    if (canon) lab = canon;
    else if (/^\d+$/.test(lab) && Number(lab) < labels.length) lab = labels[Number(lab)];
    full.set(norm(img), lab);
    byBase.set(base(img), lab);
    byStem.set(stem(img), lab);
  }
  return {
    size: full.size,
    lookup(p: string) {
      const n = norm(p);
      if (full.has(n)) return full.get(n)!;
      // a CSV path may be relative to a different root: match by suffix
      for (const [k, v] of full) if (n.endsWith('/' + k) || k.endsWith('/' + n)) return v;
      return byBase.get(base(p)) ?? byStem.get(stem(p)) ?? null;
    },
  };
}
