import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { parseCsv } from '../../../app/lib/batch/csv';
import { hasShared, lacks, lacksShared, PYTHON, REPO_ROOT, sharedPath } from '../helpers/shared';
import { ensureTinyModels, hasClipExporter, hasTorch } from '../helpers/fixtures';

const KERMANY_TEST = 'data/kermany-cxr-224/test';
const haveData = hasShared(KERMANY_TEST);
const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(REPO_ROOT, 'app', 'cli', 'label.ts');


/** A temp dir of symlinks to n test images of each class (from `pick` when given), plus one non-image. */
function buildSubset(n: number, pick?: Record<string, string[]>): { dir: string; files: string[] } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-label-'));
  const files: string[] = [];
  for (const cls of ['NORMAL', 'PNEUMONIA']) {
    fs.mkdirSync(path.join(dir, cls));
    const src = sharedPath(KERMANY_TEST, cls);
    for (const f of (pick?.[cls] ?? fs.readdirSync(src).sort()).slice(0, n)) {
      fs.symlinkSync(path.join(src, f), path.join(dir, cls, f));
      files.push(path.join(src, f));
    }
  }
  fs.writeFileSync(path.join(dir, 'NORMAL', 'notes.png'), 'this is text, not a PNG');
  return { dir, files };
}

/**
 * precision@k written out independently of app/lib/embeddings: full sort of cosine similarities per row, self
 * excluded, fraction of the k nearest sharing the row's label, averaged over rows.
 */
function bruteForcePrecisionAtK(vectors: number[][], labels: string[], k: number): number {
  const unit = vectors.map((v) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  });
  let sum = 0;
  unit.forEach((a, i) => {
    const sims = unit
      .map((b, j) => ({ j, s: a.reduce((acc, x, d) => acc + x * b[d], 0) }))
      .filter((x) => x.j !== i)
      .sort((x, y) => y.s - x.s || x.j - y.j)
      .slice(0, k);
    sum += sims.filter((x) => labels[x.j] === labels[i]).length / sims.length;
  });
  return sum / unit.length;
}

interface EmbeddingsDump {
  image_ids: string[];
  classifier: { dim: number; data: number[] } | null;
  clip: { dim: number; data: number[] } | null;
}

/** precision@5 recomputed from the CLI's --embeddings-out dump and the CSV's ground truth. */
function expectPrecisionAt5(value: unknown, dumpFile: string, csvFile: string, which: 'classifier' | 'clip') {
  expect(typeof value).toBe('number');
  expect(value as number).toBeGreaterThanOrEqual(0);
  expect(value as number).toBeLessThanOrEqual(1);
  const dump = JSON.parse(fs.readFileSync(dumpFile, 'utf8')) as EmbeddingsDump;
  const truth = new Map(parseCsv(fs.readFileSync(csvFile, 'utf8')).slice(1).map((r) => [r[0], r[2]]));
  const e = dump[which]!;
  expect(e.dim).toBeGreaterThan(1);
  expect(e.data.length).toBe(dump.image_ids.length * e.dim);
  const vectors = dump.image_ids.map((_, i) => e.data.slice(i * e.dim, (i + 1) * e.dim));
  const labels = dump.image_ids.map((id) => truth.get(id)!);
  expect(labels.every((l) => l === 'NORMAL' || l === 'PNEUMONIA')).toBe(true);
  // 20 rows × 5 neighbours: every value is a multiple of 1/100
  expect(Math.abs((value as number) * 100 - Math.round((value as number) * 100))).toBeLessThan(1e-9);
  expect(value as number).toBeCloseTo(bruteForcePrecisionAtK(vectors, labels, 5), 10);
  // a shuffled labelling gives a different answer, so the comparison above can fail
  expect(bruteForcePrecisionAtK(vectors, labels.map((_, i) => (i % 2 ? 'NORMAL' : 'PNEUMONIA')), 5)).not.toBe(value);
}

function runCli(args: string[]) {
  const r = spawnSync(TSX, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' }, timeout: 300_000 });
  if (r.status !== 0) throw new Error(`label CLI failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  const lines = r.stdout.trim().split('\n');
  return { metrics: JSON.parse(lines.at(-1)!), stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(lacksShared(KERMANY_TEST) || !hasTorch)('label CLI with a tiny random ViT fixture (built by PyTorch)', () => {
  let subset: { dir: string; files: string[] };
  let modelsDir: string;
  let refFile: string;
  beforeAll(() => {
    subset = buildSubset(10);
    modelsDir = ensureTinyModels()!;
    refFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-ref-')), 'reference.json');
    execFileSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/fixtures/make_tiny_classifier.py'), '--reference', refFile, ...subset.files], { stdio: ['ignore', 'ignore', 'pipe'] });
  });

  it('labels the folder, writes the CSV, prints metrics JSON last; matches PIL+PyTorch', () => {
    const out = path.join(subset.dir, 'labeled_dataset.csv');
    const dump = path.join(subset.dir, 'embeddings.json');
    const { metrics, stderr } = runCli([subset.dir, '--model', 'tiny-vit', '--models-dir', modelsDir, '--out', out, '--batch', '8', '--embeddings-out', dump]);
    expect(stderr).toMatch(/notes\.png|skipped/);
    expect(metrics).toMatchObject({ n: 20, n_with_ground_truth: 20, skipped: 1, threshold: 0.5, auto_label_source: 'classifier' });
    for (const k of ['accuracy', 'precision', 'recall', 'specificity', 'f1', 'auc', 'ece', 'images_per_second']) expect(typeof metrics[k]).toBe('number');
    const c = metrics.confusion;
    expect(c.tp + c.fp + c.tn + c.fn).toBe(20);
    expect(metrics.accuracy).toBeCloseTo((c.tp + c.tn) / 20, 12);

    const rows = parseCsv(fs.readFileSync(out, 'utf8'));
    expect(rows[0]).toEqual(['image_id', 'auto_label', 'ground_truth', 'confidence_score', 'classifier_prediction', 'classifier_probability', 'ood_score', 'ood']);
    expect(rows.length).toBe(21);
    const byId = new Map(rows.slice(1).map((r) => [r[0], r]));
    expect(byId.get('NORMAL/notes.png')).toBeUndefined();
    for (const r of rows.slice(1)) {
      expect(r[2]).toBe(r[0].split('/')[0]); // ground truth from folder
      expect(r[1]).toBe(r[4]); // no CLIP: auto_label = classifier prediction
      expect(r[4]).toBe(Number(r[5]) >= 0.5 ? 'PNEUMONIA' : 'NORMAL');
    }
    // same probabilities as Pillow preprocessing + PyTorch on the same files (jpeg-js vs libjpeg decoding differ slightly)
    const ref = JSON.parse(fs.readFileSync(refFile, 'utf8')) as { images: { path: string; probabilities: number[] }[] };
    let maxDiff = 0;
    for (const im of ref.images) {
      const cls = path.basename(path.dirname(im.path));
      const row = byId.get(`${cls}/${path.basename(im.path)}`)!;
      maxDiff = Math.max(maxDiff, Math.abs(Number(row[5]) - im.probabilities[1]));
    }
    expect(maxDiff).toBeLessThan(0.02);
    // precision@5 of label agreement by the classifier's penultimate embedding, checked by brute force
    expect(metrics).not.toHaveProperty('clip_precision_at_5');
    expectPrecisionAt5(metrics.precision_at_5, dump, out, 'classifier');
  });

  it.skipIf(!hasClipExporter)('--clip: auto_label comes from zero-shot CLIP (tiny random BiomedCLIP export)', () => {
    const out = path.join(subset.dir, 'labeled_clip.csv');
    const dump = path.join(subset.dir, 'embeddings-clip.json');
    const { metrics } = runCli([subset.dir, '--model', 'tiny-vit', '--clip', 'tiny-biomedclip', '--models-dir', modelsDir, '--out', out, '--embeddings-out', dump]);
    expect(metrics.auto_label_source).toBe('tiny-biomedclip');
    expectPrecisionAt5(metrics.precision_at_5, dump, out, 'classifier');
    expectPrecisionAt5(metrics.clip_precision_at_5, dump, out, 'clip');
    const rows = parseCsv(fs.readFileSync(out, 'utf8')).slice(1);
    expect(rows.length).toBe(20);
    for (const r of rows) {
      expect(['NORMAL', 'PNEUMONIA']).toContain(r[1]);
      expect(Number(r[3])).toBeGreaterThanOrEqual(0.5); // confidence of the chosen of two labels
    }
    expect(metrics.auto_label_accuracy).toBeCloseTo(rows.filter((r) => r[1] === r[2]).length / 20, 12);
  });

  it('fails clearly for an unknown model', () => {
    const r = spawnSync(TSX, [CLI, subset.dir, '--model', 'nope', '--models-dir', modelsDir, '--out', path.join(subset.dir, 'x.csv')], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/'nope' is not in/);
  });
});

const REAL = path.join(REPO_ROOT, 'public/models/pneumonia-vit');
const haveReal = fs.existsSync(path.join(REPO_ROOT, 'public/models/manifest.json')) && fs.existsSync(REAL);
describe.skipIf(lacksShared(KERMANY_TEST) || lacks(haveReal, 'public/models/pneumonia-vit and its manifest entry'))('label CLI with the real public/models/pneumonia-vit', () => {
  it('labels a 20-image subset and agrees with the Python goldens when present', () => {
    const goldens = path.join(REPO_ROOT, 'tests/goldens/pneumonia-vit/test-images.json');
    type G = { path: string; probabilities: number[] };
    const g = fs.existsSync(goldens) ? (JSON.parse(fs.readFileSync(goldens, 'utf8')) as G[] | { images: G[] }) : null;
    const list = g ? (Array.isArray(g) ? g : g.images) : [];
    // prefer images that have goldens, so every row can be compared
    const pick: Record<string, string[]> = { NORMAL: [], PNEUMONIA: [] };
    for (const im of list) {
      const [split, cls, name] = im.path.split('/');
      if (split === 'test' && pick[cls]) pick[cls].push(name);
    }
    const subset = buildSubset(10, list.length ? pick : undefined);
    const out = path.join(subset.dir, 'labeled_dataset.csv');
    const { metrics } = runCli([subset.dir, '--out', out]);
    expect(metrics.n).toBe(subset.files.length);
    expect(metrics.model).toBe('pneumonia-vit');
    expect(metrics.precision_at_5).toBeGreaterThanOrEqual(0);
    expect(metrics.precision_at_5).toBeLessThanOrEqual(1);
    if (list.length) {
      const rows = new Map(parseCsv(fs.readFileSync(out, 'utf8')).slice(1).map((r) => [r[0], Number(r[5])]));
      let compared = 0;
      for (const im of list) {
        const key = im.path.replace(/^test\//, '');
        if (!rows.has(key)) continue;
        expect(Math.abs(rows.get(key)! - im.probabilities[1])).toBeLessThan(0.05);
        compared++;
      }
      console.log(`compared ${compared} images with Python goldens`);
      expect(compared).toBe(subset.files.length);
    }
  });
});
