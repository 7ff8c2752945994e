import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { csvText, parseCsv } from '../../../app/lib/batch/csv';
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

  it.skipIf(!hasClipExporter)('--prompts FILE.json: zs_<LABEL> columns hold each label\'s probability; zero-shot accuracy and AUC recomputed from them', () => {
    const prompts = path.join(subset.dir, '..', `prompts-${path.basename(subset.dir)}.json`);
    fs.writeFileSync(prompts, JSON.stringify({ NORMAL: ['a normal chest radiograph', 'clear lungs'], PNEUMONIA: ['pneumonia on a chest x-ray', 'lung consolidation'] }));
    const out = path.join(subset.dir, 'labeled_prompts.csv');
    const { metrics } = runCli([subset.dir, '--model', 'tiny-vit', '--clip', 'tiny-biomedclip', '--prompts', prompts, '--models-dir', modelsDir, '--out', out]);
    const csv = parseCsv(fs.readFileSync(out, 'utf8'));
    expect(csv[0].slice(-2)).toEqual(['zs_NORMAL', 'zs_PNEUMONIA']);
    const rows = csv.slice(1);
    expect(rows.length).toBe(20);
    for (const r of rows) {
      const [n, p] = [Number(r[8]), Number(r[9])];
      expect(n + p).toBeCloseTo(1, 5);
      expect(r[1]).toBe(p > n ? 'PNEUMONIA' : 'NORMAL'); // auto_label: the zero-shot argmax
      expect(Number(r[3])).toBeCloseTo(Math.max(n, p), 6);
    }
    expect(metrics.zero_shot_labels).toEqual(['NORMAL', 'PNEUMONIA']);
    expect(metrics.zero_shot_accuracy).toBeCloseTo(rows.filter((r) => r[1] === r[2]).length / 20, 12);
    // AUC by its definition: the fraction of (positive, negative) pairs ranked right, ties counting half
    const pos = rows.filter((r) => r[2] === 'PNEUMONIA').map((r) => Number(r[9]));
    const neg = rows.filter((r) => r[2] === 'NORMAL').map((r) => Number(r[9]));
    let wins = 0;
    for (const a of pos) for (const b of neg) wins += a > b ? 1 : a === b ? 0.5 : 0;
    expect(metrics.zero_shot_auc).toBeCloseTo(wins / (pos.length * neg.length), 4);
  });

  it('--prompts: a malformed file is refused with a message naming what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['{"NORMAL": ["a"], ', /not valid JSON/],
      ['[["NORMAL", "a"]]', /must be a JSON object.*not an array/],
      ['{"NORMAL": ["a normal chest x-ray"]}', /has 1 label; zero-shot labelling needs at least two/],
      ['{"NORMAL": "a normal chest x-ray", "PNEUMONIA": ["b"]}', /label "NORMAL" must map to a list of prompt strings, not a string/],
      ['{"NORMAL": ["a"], "PNEUMONIA": []}', /label "PNEUMONIA" has no prompts/],
      ['{"NORMAL": ["a"], "PNEUMONIA": ["b", 3]}', /label "PNEUMONIA": prompt 2 is a number, not a string/],
      ['{"NORMAL": ["a"], "  ": ["b"]}', /a label is empty/],
    ];
    for (const [text, message] of cases) {
      const file = path.join(os.tmpdir(), `cxr-bad-prompts-${process.pid}.json`);
      fs.writeFileSync(file, text);
      const r = spawnSync(TSX, [CLI, subset.dir, '--model', 'tiny-vit', '--clip', 'tiny-vit', '--prompts', file, '--models-dir', modelsDir, '--out', path.join(subset.dir, 'bad.csv')], { cwd: REPO_ROOT, encoding: 'utf8' });
      expect(r.status).toBe(1);
      // the prompts file is read before any model: its error comes first, naming the file
      expect(r.stderr).toMatch(message);
      expect(r.stderr).toContain(file);
    }
  });

  it.skipIf(!hasShared('data/adversarial/cases/15-csv-formula-file-names'))('file names that start a formula (= + - @ TAB) are written as text, every image labelled (adversarial case 15)', () => {
    const caseDir = sharedPath('data/adversarial/cases/15-csv-formula-file-names');
    const expected = JSON.parse(fs.readFileSync(sharedPath('data/adversarial/expected/15-csv-formula-file-names.json'), 'utf8')) as { expected_rows: string[]; dangerous_prefixes: string[] };
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-formula-')), 'labeled_dataset.csv');
    const { metrics } = runCli([path.join(caseDir, 'images'), '--model', 'tiny-vit', '--models-dir', modelsDir, '--out', out]);
    expect(metrics.n).toBe(expected.expected_rows.length);
    // Read back by Python's csv module (what a spreadsheet import sees), independent of our parser.
    const rows = JSON.parse(execFileSync(PYTHON, ['-c', 'import csv,json,sys; print(json.dumps(list(csv.reader(open(sys.argv[1], newline="")))))', out]).toString()) as string[][];
    for (const r of rows.slice(1)) for (const cell of r) expect(expected.dangerous_prefixes.includes(cell[0]), `cell ${JSON.stringify(cell)}`).toBe(false);
    expect(rows.slice(1).map((r) => csvText(r[0])).sort()).toEqual([...expected.expected_rows].sort());
  });

  it('fails clearly for an unknown model', () => {
    const r = spawnSync(TSX, [CLI, subset.dir, '--model', 'nope', '--models-dir', modelsDir, '--out', path.join(subset.dir, 'x.csv')], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/'nope' is not in/);
  });
});

const REAL = path.join(REPO_ROOT, 'public/models/pneumonia-vit');
const haveReal = fs.existsSync(path.join(REPO_ROOT, 'public/models/manifest.json')) && fs.existsSync(REAL);
const GOLDENS = path.join(REPO_ROOT, 'tests/goldens/pneumonia-vit/test-images.json');
describe.skipIf(lacksShared(KERMANY_TEST) || lacks(haveReal && fs.existsSync(GOLDENS) && hasTorch, 'public/models/pneumonia-vit, its goldens and Pillow'))('label CLI with the real public/models/pneumonia-vit', () => {
  it('fp32 probabilities equal the PyTorch goldens within 1e-4 (the README claim) on the same decoded pixels', () => {
    type G = { path: string; probabilities: number[] };
    const list = (JSON.parse(fs.readFileSync(GOLDENS, 'utf8')) as { images: G[] }).images.filter((im) => im.path.startsWith('test/'));
    const pick = [...list.filter((im) => im.path.includes('/NORMAL/')).slice(0, 10), ...list.filter((im) => im.path.includes('/PNEUMONIA/')).slice(0, 10)];
    // The goldens ran on PIL-decoded JPEGs; jpeg-js rounds its IDCT differently (up to 6e-4 in probability, measured).
    // Pillow writes those very pixels losslessly as PNG, so both sides see the same image and only the model differs.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-label-real-'));
    const code = 'import sys,os\nfrom PIL import Image\nsrc,dst=sys.argv[1],sys.argv[2]\nfor p in sys.argv[3:]:\n    os.makedirs(os.path.join(dst,os.path.dirname(p)),exist_ok=True)\n    Image.open(os.path.join(src,"test",p)).convert("RGB").save(os.path.join(dst,p[:-5]+".png"))';
    execFileSync(PYTHON, ['-c', code, sharedPath('data/kermany-cxr-224'), dir, ...pick.map((im) => im.path.replace(/^test\//, ''))]);
    const out = path.join(dir, 'labeled_dataset.csv');
    const { metrics } = runCli([dir, '--out', out, '--dtype', 'fp32']);
    expect(metrics).toMatchObject({ n: 20, model: 'pneumonia-vit', dtype: 'fp32' });
    const rows = new Map(parseCsv(fs.readFileSync(out, 'utf8')).slice(1).map((r) => [r[0], Number(r[5])]));
    let maxDiff = 0;
    for (const im of pick) {
      const key = im.path.replace(/^test\//, '').replace(/\.jpeg$/, '.png');
      expect(rows.has(key)).toBe(true);
      maxDiff = Math.max(maxDiff, Math.abs(rows.get(key)! - im.probabilities[1]));
    }
    console.log(`pneumonia-vit fp32 via npm run label vs PyTorch goldens: max |dP| = ${maxDiff.toExponential(2)} over ${pick.length} images`);
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('writes the CSV as it goes; killed mid-run, --resume finishes it exactly as an uninterrupted run', async () => {
    // the real ViT-B (~0.1 s per image on one thread) gives the kill time to land mid-run
    const dir = buildSubset(6).dir;
    const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-label-out-'));
    const full = path.join(outDir, 'labeled_full.csv');
    const { metrics: ref } = runCli([dir, '--out', full, '--batch', '1', '--threads', '1']);
    const out = path.join(outDir, 'labeled_killed.csv');
    const args = [CLI, dir, '--out', out, '--batch', '1', '--threads', '1'];
    // node itself with tsx's loader (the tsx wrapper would leave its node child running when killed)
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (/\[4\/\d+\]/.test(err)) child.kill('SIGKILL'); // as a crash would: no cleanup runs
    });
    const code = await exited;
    expect(code, 'the run finished before it could be killed').toBeNull();
    const partial = parseCsv(fs.readFileSync(out, 'utf8'));
    expect(partial[0][0]).toBe('image_id');
    expect(partial.length - 1).toBeGreaterThanOrEqual(3); // chunks finished before the kill are on disk
    expect(partial.length - 1).toBeLessThan(12);
    const fullRows = parseCsv(fs.readFileSync(full, 'utf8'));
    expect(partial).toEqual(fullRows.slice(0, partial.length)); // what was written is final
    const { metrics } = runCli([...args.slice(1), '--resume']);
    expect(metrics.resumed_rows).toBeGreaterThanOrEqual(3);
    expect(fs.readFileSync(out, 'utf8')).toBe(fs.readFileSync(full, 'utf8'));
    expect(fs.existsSync(`${out}.progress.jsonl`)).toBe(false);
    const strip = (m: Record<string, unknown>) => Object.fromEntries(Object.entries(m).filter(([k]) => !['images_per_second', 'seconds', 'resumed_rows', 'out'].includes(k)));
    expect(strip(metrics)).toEqual(strip(ref));
    // a resume with another threshold is refused: its rows would not belong in the same file
    fs.writeFileSync(`${out}.progress.jsonl`, JSON.stringify({ identity: { model: 'pneumonia-vit', dtype: 'fp32', clip: null, zero_shot_labels: [], threshold: ref.threshold, dir } }) + '\n');
    const r = spawnSync(TSX, [...args, '--resume', '--threshold', '0.3'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/--resume: .* threshold [0-9.]+, this one has 0.3/);
  });

});
