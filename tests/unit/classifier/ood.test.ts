/**
 * The out-of-distribution score (app/lib/classifier/ood.ts) against the Python side that fitted it
 * (export-scripts/cxr_export/ood.py): the shipped ood.json statistics, the score of stored ONNX Runtime features,
 * the attention features against their closed form, and the whole app path (decode, preprocess, onnxruntime-web,
 * features, score) on real Kermany test and adult images (tests/goldens/pneumonia-vit/ood-images.json).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, fileByRole } from '../../../app/lib/models/manifest';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { prepareClassifierBatch } from '../../../app/lib/classifier/pipeline';
import { attentionFeatures, oodFromAttentions, oodScoreOfFeatures, parseOodStats, OodStatsError } from '../../../app/lib/classifier/ood';
import { hasShared, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';
const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const entry = findModel(manifest, 'pneumonia-vit')!;
const golden = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tests/goldens/pneumonia-vit/ood-images.json'), 'utf8')) as {
  threshold: number;
  images: { path: string; score: number; ood: boolean; features: number[] }[];
};

function statsOf(dtype: 'fp32' | 'int8') {
  const f = fileByRole(entry.variants[dtype]!, 'ood');
  expect(f, `${dtype} variant lists an 'ood' file`).toBeDefined();
  const raw = fs.readFileSync(path.join(MODELS, f!.path));
  expect(raw.byteLength).toBe(f!.bytes);
  return parseOodStats(JSON.parse(raw.toString('utf8')));
}

describe('ood.json of pneumonia-vit', () => {
  it('every variant the app can choose ships statistics fitted on its own outputs', () => {
    for (const dtype of ['fp32', 'int8'] as const) {
      const s = statsOf(dtype);
      expect(s.dtype).toBe(dtype);
      expect(s.classes).toEqual(entry.labels);
      expect(s.dim).toBe(2 * s.layers * s.tokens);
      expect(s.tokens).toBe(entry.config!.num_tokens);
      expect(s.threshold).toBeGreaterThan(0);
      expect(s.badge).toMatch(/outside this model's training data/);
    }
  });

  it('rejects malformed statistics with the field that is wrong', () => {
    const good = JSON.parse(fs.readFileSync(path.join(MODELS, fileByRole(entry.variants.fp32!, 'ood')!.path), 'utf8'));
    expect(() => parseOodStats({ ...good, method: 'energy' })).toThrow(OodStatsError);
    expect(() => parseOodStats({ ...good, dim: good.dim + 1 })).toThrow(/means\[0\] must be 601/);
    expect(() => parseOodStats({ ...good, features: { ...good.features, tokens: 49 } })).toThrow(/features/);
    expect(() => parseOodStats({ ...good, cholesky: { ...good.cholesky, base64: good.cholesky.base64.slice(0, 100) } })).toThrow(/cholesky/);
    expect(() => parseOodStats({ ...good, means: [good.means[0]] })).toThrow(/means/);
  });

  it('scores the stored ONNX Runtime features exactly as Python did (float32 statistics, float64 sums)', () => {
    const s = statsOf('fp32');
    expect(s.threshold).toBeCloseTo(golden.threshold, 10);
    for (const g of golden.images) {
      const r = oodScoreOfFeatures(g.features, s);
      expect(Math.abs(r.score - g.score) / g.score).toBeLessThan(1e-9);
      expect(r.ood).toBe(g.ood);
    }
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

  it('rejects attentions that do not match the statistics', () => {
    const s = statsOf('fp32');
    expect(() => oodFromAttentions(new Float32Array(2 * 3 * 4 * 4), [1, 2, 3, 4, 4], s)).toThrow(RangeError);
  });
});

describe.skipIf(!hasShared('data/kermany-cxr-224/test') || !hasShared('data/cxr-lung-masks/images'))('the app path on real images', () => {
  it('decode → preprocess → onnxruntime-web → features → score agrees with the Python fit', async () => {
    const s = statsOf('fp32');
    const session = await ort.InferenceSession.create(fs.readFileSync(path.join(MODELS, fileByRole(entry.variants.fp32!, 'model')!.path)), { executionProviders: ['wasm'] });
    const images = golden.images.filter((g) => !g.path.endsWith('.dcm'));
    expect(images.length).toBeGreaterThanOrEqual(8);
    for (const g of images) {
      const raster = (await decodeImageFileNode(readBytes(sharedPath('data', g.path)))).raster;
      const { data, dims } = prepareClassifierBatch([raster], entry.preprocessing!);
      const out = await session.run({ pixel_values: new ort.Tensor('float32', data, dims) }, ['attentions']);
      const adims = out.attentions.dims as number[];
      const feats = attentionFeatures(out.attentions.data as Float32Array, adims);
      let maxd = 0;
      for (let i = 0; i < feats.length; i++) maxd = Math.max(maxd, Math.abs(feats[i] - g.features[i]));
      const [r] = oodFromAttentions(out.attentions.data as Float32Array, adims, s);
      // jpeg-js and libjpeg (PIL) decode some pixels 1-2 grey levels apart: features move a little, scores ~1%
      expect(maxd).toBeLessThan(0.05);
      expect(Math.abs(r.score - g.score) / g.score).toBeLessThan(0.03);
      if (Math.abs(g.score - s.threshold) / s.threshold > 0.03) expect(r.ood).toBe(g.ood);
      console.log(`${g.path}: score ${r.score.toFixed(3)} (Python ${g.score.toFixed(3)}), max |feature diff| ${maxd.toExponential(1)}, ood ${r.ood}`);
    }
    await session.release();
  }, 60_000);
});
