/**
 * One implementation of batch labelling (issue 18.2): the same folder through the app's batch slice
 * (app/store/batch.ts + batch-export.ts, run here in Node with the real engines and Node's decoder in place of the
 * imaging worker) and through `npm run label` (a child process) gives byte-identical labeled_dataset.csv, the same
 * sidecar and the same metrics report (timings aside), for a binary and a 3-label classifier, with and without a
 * CLIP model. Nothing is mocked: both paths run the real ONNX graphs on real Kermany images.
 */
import 'fake-indexeddb/auto'; // the batch journal's IndexedDB, in Node
import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { create } from 'zustand';
import { parseManifest } from '../../../app/lib/models/manifest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import type { BatchSource, ImagingApi } from '../../../app/lib/imaging/decode-outcome';
import { nodeModelFiles } from '../../../app/platform/node/model-files';
import { nodeOrtHost, nodePlanInputs } from '../../../app/platform/node/ort';
import { inProcessEngines } from '../../../app/services/engines';
import { InferenceService } from '../../../app/services/inference';
import { createBatchSlice } from '../../../app/store/batch';
import { createBatchExportSlice } from '../../../app/store/batch-export';
import type { AppState } from '../../../app/store/state';
import { decodeForBatchNode } from '../../../app/cli/label-inputs';
import { ensureTinyModels, hasClipExporter, hasTorch } from '../helpers/fixtures';
import { lacksShared, REPO_ROOT, sharedPath } from '../helpers/shared';

const KERMANY_TEST = 'data/kermany-cxr-224/test';
const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(REPO_ROOT, 'app', 'cli', 'label.ts');

/** A folder of n images per class dir; `pick(cls)` lists the source files of a class dir. */
function subset(classes: Record<string, { from: string; filter?: (f: string) => boolean }>, n: number): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-parity-'));
  for (const [cls, { from, filter }] of Object.entries(classes)) {
    fs.mkdirSync(path.join(dir, cls));
    const src = sharedPath(KERMANY_TEST, from);
    for (const f of fs.readdirSync(src).sort().filter(filter ?? (() => true)).slice(0, n)) fs.symlinkSync(path.join(src, f), path.join(dir, cls, f));
  }
  // A file the decoders refuse: a failed row in the app, a skipped file in the CLI, in neither CSV.
  fs.writeFileSync(path.join(dir, Object.keys(classes)[0], 'notes.png'), 'this is text, not a PNG');
  return dir;
}

function runCli(args: string[]) {
  const r = spawnSync(TSX, [CLI, ...args], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`label CLI failed (${r.status}):\n${r.stderr}\n${r.stdout}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** The batch slice and its export slice in a store of their own, wired to Node's engines and decoder. */
function nodeBatchStore(modelsDir: string, classifierId: string, clipId: string | undefined) {
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')));
  const opts = { modelsDir, threads: 1, preferDtype: 'fp32' as const };
  const inference = new InferenceService({ files: nodeModelFiles(modelsDir), planInputs: nodePlanInputs(opts), engines: inProcessEngines(nodeOrtHost(opts)) });
  const source = { kind: 'local' as const, files: new Map<string, Blob>(), name: modelsDir };
  const alerts: string[] = [];
  const imaging: Pick<ImagingApi, 'decodeForBatch'> = {
    async decodeForBatch(src: BatchSource, sizes) {
      if (!('file' in src)) throw new Error('zip sources are not used here');
      const out = await decodeForBatchNode({ rel: '', read: async () => new Uint8Array(await (src.file as Blob).arrayBuffer()) }, sizes);
      return out.ok ? { ok: true, width: 0, height: 0, format: 'png', thumbnail: out.modelInputs[0], modelInputs: out.modelInputs, notes: [] } : { ok: false, code: 'decode', message: out.message };
    },
  };
  const store = create<AppState>()((set, get, api) => {
    const rest = {
      manifest,
      chosenModelId: { classifier: classifierId, clip: clipId },
      prompts: {},
      models: {},
      inference,
      workers: { imaging: () => imaging },
      alert: (m: string) => alerts.push(m),
      modelRequest: (entry: ModelEntry) => ({ entry, override: 'wasm' as const, source }),
      async ensureModelLoaded(id: string) {
        const entry = manifest.models.find((m) => m.id === id)!;
        return inference.ensureSession(get().modelRequest(entry));
      },
      modelRan() {},
    } as unknown as AppState;
    return { ...rest, ...createBatchSlice(set, get, api), ...createBatchExportSlice(set, get, api) };
  });
  return { store, alerts, inference };
}

/** Every file of dir as the drop zone hands it to batchAdd (File blobs with their relative paths), sorted. */
async function droppedFiles(dir: string) {
  const out: { name: string; path: string; blob: Blob }[] = [];
  const rec = async (d: string) => {
    for (const name of fs.readdirSync(d).sort()) {
      const p = path.join(d, name);
      if (fs.statSync(p).isDirectory()) await rec(p);
      else out.push({ name, path: path.relative(dir, p), blob: await fs.openAsBlob(p) });
    }
  };
  await rec(dir);
  return out;
}

const TIMING = ['images_per_second', 'seconds', 'threads', 'batch', 'out', 'resumed_rows'];

async function expectParity(dir: string, modelsDir: string, model: string, clip?: string) {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-parity-out-')), `labeled_${model}_${clip ?? 'noclip'}.csv`);
  const cli = runCli([dir, '--model', model, '--models-dir', modelsDir, '--out', out, '--threads', '1', '--batch', '8', ...(clip ? ['--clip', clip] : [])]);
  const { store, inference } = nodeBatchStore(modelsDir, model, clip);
  await store.getState().batchAdd(await droppedFiles(dir));
  const s = store.getState();
  expect(s.batch.running).toBe(false);
  const appCsv = s.batchCsv();
  const cliCsv = fs.readFileSync(out, 'utf8');
  expect(appCsv.split('\r\n').length).toBeGreaterThan(10);
  expect(appCsv).toBe(cliCsv);
  const meta = JSON.parse(fs.readFileSync(out.replace(/\.csv$/, '.meta.json'), 'utf8'));
  const appMeta = s.batchCsvMetadata();
  expect({ ...appMeta, created: 0, file: 0 }).toEqual({ ...meta, created: 0, file: 0 });
  const appReport = JSON.parse(JSON.stringify(s.batchMetricsReport())) as Record<string, unknown>;
  if (!clip) delete appReport.clip_precision_at_5;
  const cliReport = Object.fromEntries(Object.entries(cli).filter(([k]) => !TIMING.includes(k)));
  expect(s.batch.rows.filter((r) => r.status === 'error').map((r) => `${r.imageId}: ${r.error}`)).toEqual([expect.stringMatching(/notes\.png/)]);
  expect(appReport).toEqual(cliReport);
  // the report carries real numbers, not only nulls
  expect(typeof cliReport.accuracy).toBe('number');
  expect(cliReport.skipped).toBe(1);
  await inference.release();
  return { cli, csv: cliCsv };
}

describe.skipIf(lacksShared(KERMANY_TEST) || !hasTorch)('app batch slice vs npm run label: one implementation', () => {
  let modelsDir: string;
  beforeAll(() => {
    modelsDir = ensureTinyModels()!;
  });

  it('binary classifier (tiny-vit), with the CLIP model when there is one: identical CSV, sidecar and metrics', async () => {
    const dir = subset({ NORMAL: { from: 'NORMAL' }, PNEUMONIA: { from: 'PNEUMONIA' } }, 9);
    const { cli } = await expectParity(dir, modelsDir, 'tiny-vit');
    expect(cli.n).toBe(18);
    expect(cli.confusion).toHaveProperty('tp');
    if (hasClipExporter) {
      const { cli: withClip, csv } = await expectParity(dir, modelsDir, 'tiny-vit', 'tiny-biomedclip');
      expect(typeof withClip.zero_shot_accuracy).toBe('number');
      expect(csv.split('\r\n')[0]).toMatch(/,zs_\w+,zs_\w+$/);
    }
  }, 600_000);

  it('3-label classifier (tiny-vit-3): identical CSV and metrics; classifier_probability is the predicted label’s', async () => {
    const dir = subset({ NORMAL: { from: 'NORMAL' }, BACTERIA: { from: 'PNEUMONIA', filter: (f) => /bacteria/i.test(f) }, VIRUS: { from: 'PNEUMONIA', filter: (f) => /virus/i.test(f) } }, 6);
    const { cli, csv } = await expectParity(dir, modelsDir, 'tiny-vit-3');
    expect(cli.n).toBe(18);
    expect(cli.threshold).toBeNull();
    const m = cli.confusion as number[][];
    expect(m.length).toBe(3);
    expect(m.flat().reduce((a, b) => a + b, 0)).toBe(18);
    for (const line of csv.trim().split('\r\n').slice(1)) {
      const c = line.split(',');
      expect(['NORMAL', 'BACTERIA', 'VIRUS']).toContain(c[4]);
      expect(Number(c[5])).toBeGreaterThanOrEqual(1 / 3 - 1e-6); // the argmax of three probabilities
      expect(c[5]).not.toBe('');
    }
  }, 600_000);

  it('the batch journal: a stopped batch comes back in a new store (as after a reload) and the same files finish it', async () => {
    // Enough files that a stop after the first chunk leaves rows pending: the chunk being decoded beside it (the
    // pipeline) still finishes, so 16 + 16 rows can be done when the stop lands.
    const dir = subset({ NORMAL: { from: 'NORMAL' }, PNEUMONIA: { from: 'PNEUMONIA' } }, 40);
    const files = await droppedFiles(dir);
    // Uninterrupted reference.
    const ref = nodeBatchStore(modelsDir, 'tiny-vit', undefined);
    await ref.store.getState().batchAdd(files);
    const refCsv = ref.store.getState().batchCsv();
    const total = ref.store.getState().batch.rows.length;
    expect(total).toBe(81);
    ref.store.getState().batchClear();
    await ref.inference.release();
    // A run stopped after its first chunks (the page would be gone: only IndexedDB remains).
    const first = nodeBatchStore(modelsDir, 'tiny-vit', undefined);
    const running = first.store.getState().batchAdd(files);
    while (first.store.getState().batch.rows.filter((r) => r.status !== 'pending').length < 8) await new Promise((r) => setTimeout(r, 5));
    first.store.getState().batchCancel();
    await running;
    const stopped = first.store.getState().batch.rows.filter((r) => r.status !== 'pending');
    expect(stopped.length).toBeLessThan(total);
    await first.inference.release();
    // "Reload": a new store restores the finished rows exactly, the rest wait for their files.
    const second = nodeBatchStore(modelsDir, 'tiny-vit', undefined);
    await second.store.getState().batchRestore();
    const b = second.store.getState().batch;
    expect(b.rows).toHaveLength(total);
    expect(b.awaitingFiles).toBe(total - stopped.length);
    for (const r of stopped) {
      const back = b.rows[r.index];
      expect(back.status).toBe(r.status);
      expect(back.classifierProbability).toBe(r.classifierProbability);
      expect(back.classifierEmbedding).toEqual(r.classifierEmbedding);
    }
    // The same files again: only the pending rows run, and the CSV is the uninterrupted run's, byte for byte.
    await second.store.getState().batchAdd(files);
    expect(second.store.getState().batch.awaitingFiles).toBe(0);
    expect(second.store.getState().batch.rows.every((r) => r.status !== 'pending')).toBe(true);
    expect(second.store.getState().batchCsv()).toBe(refCsv);
    second.store.getState().batchClear();
    await second.inference.release();
  }, 600_000);
});
