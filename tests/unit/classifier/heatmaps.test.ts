/**
 * Both heatmap methods of the app (attention rollout and occlusion sensitivity, app/lib/classifier) on the shipped
 * pneumonia-vit graph through onnxruntime-web in Node, against PyTorch references on the same real test images
 * (tests/goldens/pneumonia-vit/heatmaps.json, written by `cxr-export heatmaps` from the module rebuilt out of the
 * ONNX graph).
 *
 * Two comparisons per image: (1) strict, 1e-4: PyTorch is run (a subprocess of the project's .venv) on exactly the
 * input tensor the app's TypeScript preprocessing produced, so only the two algorithms are compared; (2) the
 * committed golden from PIL-decoded pixels, looser (jpeg-js and libjpeg differ by 1-2 grey levels on some pixels,
 * which moves the maps by ~1e-3).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, fileByRole } from '../../../app/lib/models/manifest';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { prepareClassifierBatch } from '../../../app/lib/classifier/pipeline';
import { attentionRollout } from '../../../app/lib/classifier/postprocess';
import { occlusionOffsets, occlusionSensitivity } from '../../../app/lib/classifier/occlusion';
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { hasPython, hasShared, PYTHON, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';
const MODELS = path.join(REPO_ROOT, 'public/models');
const GOLDEN = path.join(REPO_ROOT, 'tests/goldens/pneumonia-vit/heatmaps.json');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const entry = findModel(manifest, 'pneumonia-vit')!;

interface GoldenImage {
  path: string;
  label: string;
  probabilities: number[];
  rollout: number[];
  occlusion: { window: number; stride: number; fill: number; target: number; base: number; grid_w: number; grid_h: number; drop: number[] };
}
const golden = JSON.parse(fs.readFileSync(GOLDEN, 'utf8')) as { images: GoldenImage[] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('occlusion offsets', () => {
  it('tiles the axis and keeps the last square flush with the border', () => {
    expect(occlusionOffsets(224, 32, 32)).toEqual([0, 32, 64, 96, 128, 160, 192]);
    expect(occlusionOffsets(10, 4, 4)).toEqual([0, 4, 6]);
    expect(() => occlusionOffsets(10, 11, 1)).toThrow(RangeError);
  });
});

interface Reference {
  probabilities: number[];
  rollout: number[];
  occlusion: { window: number; target: number; base: number; grid_w: number; grid_h: number; drop: number[] };
}

async function appSide(s: ort.InferenceSession, g: GoldenImage) {
  const raster = (await decodeImageFileNode(readBytes(sharedPath('data', g.path)))).raster;
  const { data, dims } = prepareClassifierBatch([raster], entry.preprocessing!);
  const out = await s.run({ pixel_values: new ort.Tensor('float32', data, dims) });
  const roll = attentionRollout(out.attentions.data as Float32Array, out.attentions.dims as number[]);
  let calls = 0;
  const occ = await occlusionSensitivity(
    async (x, d) => {
      calls++;
      const r = await s.run({ pixel_values: new ort.Tensor('float32', x, d) }, ['probabilities']);
      return r.probabilities.data as Float32Array;
    },
    data,
    dims,
    { window: g.occlusion.window, stride: g.occlusion.stride, fill: g.occlusion.fill, batchSize: 16 },
  );
  return { data, probabilities: out.probabilities.data as Float32Array, roll, occ, calls };
}

function compare(app: Awaited<ReturnType<typeof appSide>>, ref: Reference, tol: number): number[] {
  const d = [maxAbsDiff(app.probabilities, ref.probabilities), maxAbsDiff(app.roll.grid, ref.rollout), maxAbsDiff(app.occ.drop, ref.occlusion.drop)];
  expect(d[0]).toBeLessThan(tol);
  expect(d[1]).toBeLessThan(tol);
  expect([app.occ.gridW, app.occ.gridH]).toEqual([ref.occlusion.grid_w, ref.occlusion.grid_h]);
  expect(app.occ.targetClass).toBe(ref.occlusion.target);
  expect(Math.abs(app.occ.baseProbability - ref.occlusion.base)).toBeLessThan(tol);
  expect(d[2]).toBeLessThan(tol);
  return d;
}

describe.skipIf(!hasShared('data/kermany-cxr-224/test'))('heatmaps of pneumonia-vit vs PyTorch (real test images)', () => {
  const file = fileByRole(entry.variants.fp32!, 'model')!;
  const session = ort.InferenceSession.create(fs.readFileSync(path.join(MODELS, file.path)), { executionProviders: ['wasm'] });

  it.skipIf(!hasPython)('rollout and occlusion equal PyTorch within 1e-4 on the very input the app computed', async () => {
    const s = await session;
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'heatmaps-'));
    try {
      const apps = [];
      const inputs: string[] = [];
      for (const [i, g] of golden.images.entries()) {
        const a = await appSide(s, g);
        apps.push(a);
        const f = path.join(tmp, `input-${i}.f32`);
        fs.writeFileSync(f, Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength));
        inputs.push(f);
      }
      const out = path.join(tmp, 'refs.json');
      execFileSync(PYTHON, ['-m', 'cxr_export', 'heatmaps', '--out', out, '--inputs', ...inputs], {
        cwd: REPO_ROOT,
        env: { ...process.env, PYTHONPATH: path.join(REPO_ROOT, 'export-scripts'), OMP_NUM_THREADS: '1' },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const refs = JSON.parse(fs.readFileSync(out, 'utf8')) as { parity_rebuilt_vs_onnx: number; images: Reference[] };
      expect(refs.parity_rebuilt_vs_onnx).toBeLessThan(1e-4);
      expect(refs.images.length).toBe(golden.images.length);
      apps.forEach((a, i) => {
        const d = compare(a, refs.images[i], 1e-4);
        console.log(`strict ${golden.images[i].path}: max |diff| probabilities ${d[0].toExponential(1)}, rollout ${d[1].toExponential(1)}, occlusion drop ${d[2].toExponential(1)}`);
        expect(a.calls).toBe(1 + Math.ceil((a.occ.gridW * a.occ.gridH) / 16));
        // the normalised map is the positive part of the drop, max 1 when any square lowers the probability
        if (Math.max(...a.occ.drop) > 0) expect(Math.max(...a.occ.grid)).toBeCloseTo(1, 6);
        expect(Math.min(...a.occ.grid)).toBeGreaterThanOrEqual(0);
      });
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 400_000);

  for (const g of golden.images) {
    it(`${g.path}: within 1e-2 of the committed PyTorch golden (PIL-decoded pixels)`, async () => {
      const d = compare(await appSide(await session, g), g, 1e-2);
      console.log(`golden ${g.path}: max |diff| probabilities ${d[0].toExponential(1)}, rollout ${d[1].toExponential(1)}, occlusion drop ${d[2].toExponential(1)}`);
    });
  }
});
