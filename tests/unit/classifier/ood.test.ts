/**
 * The out-of-distribution score (app/lib/classifier/ood.ts, ood-image.ts) against the Python side that fitted it
 * (export-scripts/cxr_export/ood.py): the shipped ood.json statistics, the score of stored ONNX Runtime / numpy
 * features, the attention and image-statistics features against closed forms, and the whole app path (decode,
 * preprocess, onnxruntime-web, features, score) on real Kermany test, adult and DICOM images
 * (tests/goldens/pneumonia-vit/ood-images.json).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, fileByRole } from '../../../app/lib/models/manifest';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { prepareClassifierBatch } from '../../../app/lib/classifier/pipeline';
import { attentionFeatures, combineParts, oodFeatures, oodOfBatch, oodScoreOfFeatures, parseOodStats, OodStatsError } from '../../../app/lib/classifier/ood';
import { imageStatsDim, imageStatsFeatures } from '../../../app/lib/classifier/ood-image';
import { hasShared, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';
const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const entry = findModel(manifest, 'pneumonia-vit')!;
interface GoldenImage {
  path: string;
  score: number;
  ood: boolean;
  parts: Record<string, number>;
  features: Record<string, number[]>;
}
const golden = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tests/goldens/pneumonia-vit/ood-images.json'), 'utf8')) as { threshold: number; images: GoldenImage[] };

function rawOf(dtype: 'fp32' | 'int8') {
  const f = fileByRole(entry.variants[dtype]!, 'ood');
  expect(f, `${dtype} variant lists an 'ood' file`).toBeDefined();
  const raw = fs.readFileSync(path.join(MODELS, f!.path));
  expect(raw.byteLength).toBe(f!.bytes);
  return JSON.parse(raw.toString('utf8'));
}
const statsOf = (dtype: 'fp32' | 'int8') => parseOodStats(rawOf(dtype));

describe('ood.json of pneumonia-vit', () => {
  it('every variant the app can choose ships statistics fitted on its own outputs: attention + two image-statistics grids', () => {
    for (const dtype of ['fp32', 'int8'] as const) {
      const s = statsOf(dtype);
      expect(s.dtype).toBe(dtype);
      expect(s.classes).toEqual(entry.labels);
      expect(s.components.map((c) => c.kind)).toEqual(['attention-entropy+received', 'image-stats', 'image-stats']);
      const [a, i8, i16] = s.components;
      expect(a.dim).toBe(2 * a.layers! * a.tokens!);
      expect(a.tokens).toBe(entry.config!.num_tokens);
      expect(a.means.length).toBe(entry.labels!.length);
      expect([i8.grid, i16.grid]).toEqual([8, 16]);
      expect(i16.dim).toBe(imageStatsDim(16, i16.bins!));
      expect(i16.inputMean).toEqual(entry.preprocessing!.mean);
      expect(s.combineP).toBe(2);
      expect(s.threshold).toBeGreaterThan(0);
      expect(s.badge).toMatch(/outside this model's training data/);
    }
  });

  it('rejects malformed statistics with the field that is wrong; still reads format v1', () => {
    const good = rawOf('fp32');
    const comp = (i: number, patch: object) => ({ ...good, components: good.components.map((c: object, k: number) => (k === i ? { ...c, ...patch } : c)) });
    expect(() => parseOodStats({ ...good, method: 'energy' })).toThrow(OodStatsError);
    expect(() => parseOodStats(comp(0, { dim: good.components[0].dim + 1 }))).toThrow(/components\[0\]\.means\[0\] must be 601/);
    expect(() => parseOodStats(comp(0, { features: { ...good.components[0].features, tokens: 49 } }))).toThrow(/components\[0\]\.features/);
    expect(() => parseOodStats(comp(2, { features: { ...good.components[2].features, grid: 15 } }))).toThrow(/components\[2\]\.features: 2 × grid²/);
    expect(() => parseOodStats(comp(1, { cholesky: { ...good.components[1].cholesky, base64: good.components[1].cholesky.base64.slice(0, 100) } }))).toThrow(/components\[1\]\.cholesky/);
    expect(() => parseOodStats(comp(1, { scale: 0 }))).toThrow(/scale must be a positive number/);
    expect(() => parseOodStats({ ...good, combine: { p: -1 } })).toThrow(/combine\.p/);
    const a = good.components[0];
    const v1 = parseOodStats({ method: 'mahalanobis-tied', classes: good.classes, dim: a.dim, means: a.means, features: a.features, cholesky: a.cholesky, threshold: 34.2 });
    expect(v1.components).toHaveLength(1);
    expect(v1.components[0].scale).toBe(1);
    expect(v1.combineP).toBe(Infinity);
  });

  it('scores the stored features exactly as Python did (float32 statistics, float64 sums), per component and combined', () => {
    const s = statsOf('fp32');
    expect(s.threshold).toBeCloseTo(golden.threshold, 10);
    expect(golden.images.length).toBeGreaterThanOrEqual(10);
    for (const g of golden.images) {
      const r = oodScoreOfFeatures(s.components.map((c) => g.features[c.name]), s);
      expect(Math.abs(r.score - g.score) / g.score).toBeLessThan(1e-9);
      for (const c of s.components) expect(Math.abs(r.parts[c.name] - g.parts[c.name]) / g.parts[c.name]).toBeLessThan(1e-9);
      expect(r.ood).toBe(g.ood);
    }
    // The non-chest DICOM of ../shared (abdomen/pelvis) is above every Kermany test image of the goldens.
    const ot = golden.images.find((g) => g.path.endsWith('non_cxr_control_OT_512.dcm'))!;
    const kermany = golden.images.filter((g) => g.path.startsWith('kermany'));
    expect(ot.ood).toBe(true);
    expect(ot.score).toBeGreaterThan(Math.max(...kermany.map((g) => g.score)));
  });

  it('combines scaled distances by a p-norm (p = Infinity: the largest)', () => {
    expect(combineParts([3, 4], 2)).toBeCloseTo(5, 12);
    expect(combineParts([3, 4], Infinity)).toBe(4);
    expect(combineParts([1, 1, 1], 1)).toBeCloseTo(3, 12);
  });
});

describe('attention features', () => {
  it('uniform attention: entropy log T, received mass log(1/T + eps) (closed form)', () => {
    const [b, L, H, T] = [2, 3, 2, 5];
    const att = new Float32Array(b * L * H * T * T).fill(1 / T);
    const f = attentionFeatures(att, [b, L, H, T, T], 1);
    expect(f.length).toBe(2 * L * T);
    for (let i = 0; i < L * T; i++) expect(f[i]).toBeCloseTo(-Math.log(1 / T + 1e-9), 6);
    for (let i = L * T; i < 2 * L * T; i++) expect(f[i]).toBeCloseTo(Math.log(1 / T + 1e-6), 6);
  });

  it('one-hot attention to token 0: zero entropy, all mass received by token 0', () => {
    const [L, H, T] = [1, 2, 3];
    const att = new Float32Array(L * H * T * T);
    for (let h = 0; h < H; h++) for (let q = 0; q < T; q++) att[h * T * T + q * T] = 1;
    const f = attentionFeatures(att, [1, L, H, T, T]);
    for (let t = 0; t < T; t++) expect(Math.abs(f[t])).toBeLessThan(1e-6);
    expect(f[T]).toBeCloseTo(Math.log(1 + 1e-6), 9);
    expect(f[T + 1]).toBeCloseTo(Math.log(1e-6), 9);
  });

  it('rejects inputs that do not match the statistics', () => {
    const s = statsOf('fp32');
    expect(() => oodOfBatch({ attentions: { data: new Float32Array(2 * 3 * 4 * 4), dims: [1, 2, 3, 4, 4] } }, s)).toThrow(RangeError);
    const x = new Float32Array(3 * 224 * 224);
    expect(() => oodFeatures({ pixels: { data: x, dims: [1, 3, 224, 224] } }, s, 0)).toThrow(/attentions output/);
  });
});

describe('image-statistics features (closed forms)', () => {
  const spec = { grid: 2, bins: 4, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  /** A [1,3,H,W] model input of grey values g(y, x) in [0, 1] (x = (g − 0.5) / 0.5), optionally tinted. */
  function input(H: number, W: number, g: (y: number, x: number) => number, tint = 0): Float32Array {
    const out = new Float32Array(3 * H * W);
    for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[c * H * W + y * W + x] = (g(y, x) + (c === 0 ? tint : c === 2 ? -tint : 0) - 0.5) / 0.5;
    return out;
  }

  it('a flat grey image: zero layout, one full histogram bin, no colour, m = the grey level', () => {
    const f = imageStatsFeatures(input(8, 8, () => 0.3), [1, 3, 8, 8], spec);
    expect(f.length).toBe(imageStatsDim(2, 4));
    for (let i = 0; i < 4; i++) expect(f[i]).toBeCloseTo(0, 9);
    for (let i = 4; i < 8; i++) expect(f[i]).toBeCloseTo(Math.log(1e-3), 6);
    expect(Array.from(f.slice(8, 12)).map((v) => +v.toFixed(9))).toEqual([0, 1, 0, 0]); // 0.3 * 4 = 1.2 → bin 1
    expect(f[12]).toBeCloseTo(Math.log(1e-3), 5);
    expect(f[13]).toBeCloseTo(0.3, 6);
    expect(f[14]).toBeCloseTo(Math.log(1e-3), 5);
  });

  it('black top half, white bottom half: layout ±1/(1 + 2e-3), two histogram bins, m 0.5, s 0.5; a tint shows as colour', () => {
    const half = (y: number) => (y < 4 ? 0 : 1);
    const f = imageStatsFeatures(input(8, 8, half), [1, 3, 8, 8], spec);
    const z = 0.5 / (0.5 + 1e-3);
    expect(Array.from(f.slice(0, 4))).toEqual([-z, -z, z, z].map((v) => expect.closeTo(v, 6)));
    expect(Array.from(f.slice(8, 12))).toEqual([Math.SQRT1_2, 0, 0, Math.SQRT1_2].map((v) => expect.closeTo(v, 9)));
    expect(f[13]).toBeCloseTo(0.5, 9);
    expect(f[14]).toBeCloseTo(Math.log(0.5 + 1e-3), 6);
    const tinted = imageStatsFeatures(input(8, 8, () => 0.5, 0.2), [1, 3, 8, 8], spec);
    expect(tinted[12]).toBeCloseTo(Math.log((0.2 + 0 + 0.2) / 3 + 1e-3), 5); // mean |rgb_c − grey| over channels
  });

  it('rejects a grid that does not divide the input and a non-RGB tensor', () => {
    expect(() => imageStatsFeatures(new Float32Array(3 * 10 * 10), [1, 3, 10, 10], { ...spec, grid: 3 })).toThrow(/multiple of the 3×3 grid/);
    expect(() => imageStatsFeatures(new Float32Array(100), [1, 1, 10, 10], spec)).toThrow(/\[b, 3, H, W\]/);
  });
});

describe.skipIf(!hasShared('data/kermany-cxr-224/test') || !hasShared('data/cxr-lung-masks/images') || !hasShared('data/dicom'))('the app path on real images', () => {
  it('decode → preprocess → onnxruntime-web → features → score agrees with the Python fit (JPEG and DICOM)', async () => {
    const s = statsOf('fp32');
    const session = await ort.InferenceSession.create(fs.readFileSync(path.join(MODELS, fileByRole(entry.variants.fp32!, 'model')!.path)), { executionProviders: ['wasm'] });
    expect(golden.images.filter((g) => g.path.endsWith('.dcm')).length).toBe(2);
    for (const g of golden.images) {
      const raster = (await decodeImageFileNode(readBytes(sharedPath('data', g.path)))).raster;
      const { data, dims } = prepareClassifierBatch([raster], entry.preprocessing!);
      const out = await session.run({ pixel_values: new ort.Tensor('float32', data, dims) }, ['attentions']);
      const inputs = { attentions: { data: out.attentions.data as Float32Array, dims: out.attentions.dims as number[] }, pixels: { data, dims } };
      const feats = oodFeatures(inputs, s, 0);
      const maxd = s.components.map((c, k) => feats[k].reduce((m, v, i) => Math.max(m, Math.abs(v - g.features[c.name][i])), 0));
      const [r] = oodOfBatch(inputs, s);
      if (g.path.endsWith('.dcm')) {
        // The same pixels on both sides (pydicom and the app's DICOM decoder, same window): float32 sums only.
        for (const d of maxd) expect(d).toBeLessThan(1e-3);
        expect(Math.abs(r.score - g.score) / g.score).toBeLessThan(1e-4);
      } else {
        // jpeg-js and libjpeg (PIL) decode some pixels 1-2 grey levels apart: features move a little (measured:
        // scores within 0.1%)
        expect(maxd[0]).toBeLessThan(0.05);
        expect(Math.abs(r.score - g.score) / g.score).toBeLessThan(0.01);
      }
      if (Math.abs(g.score - s.threshold) / s.threshold > 0.01) expect(r.ood).toBe(g.ood);
      console.log(`${g.path}: score ${r.score.toFixed(3)} (Python ${g.score.toFixed(3)}), max |feature diff| ${maxd.map((v) => v.toExponential(1))}, ood ${r.ood}`);
    }
    await session.release();
  }, 120_000);
});
