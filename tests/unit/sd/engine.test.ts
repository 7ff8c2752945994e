/**
 * The generate engine and `npm run generate` in Node on tiny-sd (onnxruntime-web wasm, no mocks): same seed ->
 * diffusers' image, base/LoRA side by side, cancel between steps, the size check refusing SD 1.5's real sizes
 * before reading a single file.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PNG } from 'pngjs';
import { createHash } from 'node:crypto';
import { REPO_ROOT } from '../helpers/shared';
import { parseManifest, findModel } from '../../../app/lib/models/manifest';
import { checkSdFit, chooseLayout, createSdEngine, filesForLayout, composeGrid } from '../../../app/lib/sd';
import { defaultModelId } from '../../../app/lib/models/default-model';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import { parseGenerateArgs, runGenerate } from '../../../app/cli/generate';
import { nodeGenerateHost } from '../../../app/platform/node/engines';
import { nodeOrtHost } from '../../../app/platform/node/ort';
import { createClassifierEngine } from '../../../app/lib/classifier/engine';

const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const tiny = findModel(manifest, 'tiny-sd')!;
const sd15 = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tests/fixtures/sd15-sizes.json'), 'utf8')) as ModelEntry;
const golden = (f: string) => JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tests/goldens/tiny-sd', f), 'utf8'));
const noGpu = { available: false, shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };

describe('npm run generate (app/cli/generate.ts)', () => {
  it('writes base + LoRA PNGs equal to diffusers (±1 grey level), a grid and the JSON record', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gen-'));
    const rec = await runGenerate(parseGenerateArgs(['--model', 'tiny-sd', '--prompt', 'a chest X-ray showing pneumonia', '--seed', '42', '--steps', '4', '--n', '2', '--side', 'both', '--out', out, '--threads', '1']), () => {});
    expect(rec.images.map((i) => `${i.seed}/${i.side}`)).toEqual(['42/base', '42/lora', '43/base', '43/lora']);
    expect(rec.model.id).toBe('tiny-sd');
    expect(rec.random_weights).toBe(true);
    expect(rec.model.unet_layout).toBe('scaled');
    expect(rec.model.files.map((f) => f.role).sort()).toEqual(['scheduler_config', 'text_encoder', 'tokenizer', 'unet_scaled', 'vae_decoder']);
    for (const [file, g] of [['tiny-sd_s42_base.png', 'pipeline_base_seed42.json'], ['tiny-sd_s42_lora.png', 'pipeline_lora_seed42.json']]) {
      const png = PNG.sync.read(fs.readFileSync(path.join(out, file)));
      const ref = golden(g).outputs.image;
      const [, , H, W] = ref.dims;
      expect([png.width, png.height]).toEqual([W, H]);
      let worst = 0;
      for (let c = 0; c < 3; c++) for (let p = 0; p < H * W; p++) worst = Math.max(worst, Math.abs(png.data[p * 4 + c] - Math.round(ref.data[c * H * W + p] * 255)));
      expect(worst).toBeLessThanOrEqual(1);
    }
    const rj = JSON.parse(fs.readFileSync(path.join(out, 'generation.json'), 'utf8'));
    expect(rj).toMatchObject({ prompt: 'a chest X-ray showing pneumonia', seeds: [42, 43], steps: 4, guidance_scale: 1, grid: 'grid.png' });
    // sha256 of the PNG file written, and the LCM timesteps of diffusers' scheduler (the golden's)
    const png42 = fs.readFileSync(path.join(out, 'tiny-sd_s42_base.png'));
    expect(rj.images[0]).toMatchObject({ file: 'tiny-sd_s42_base.png', sha256: createHash('sha256').update(png42).digest('hex') });
    expect(rj.images[0].timesteps).toEqual(golden('generation_base.json').meta.timesteps);
    expect(rj.images[0].score).toBeUndefined();
    expect(fs.existsSync(path.join(out, 'grid.png'))).toBe(true);
  });

  it.skipIf(!findModel(manifest, 'tiny-vit-classifier'))('--classifier scores each image: P(PNEUMONIA) of the classifier on the PNG it wrote', async () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-gen-'));
    const rec = await runGenerate(parseGenerateArgs(['--model', 'tiny-sd', '--seed', '5', '--steps', '2', '--side', 'base', '--classifier', 'tiny-vit-classifier', '--out', out, '--threads', '1']), () => {});
    expect(rec.images).toHaveLength(1);
    const s = rec.images[0].score!;
    expect(s).toMatchObject({ classifierId: 'tiny-vit-classifier', classifierWeights: 'random-fixture' });
    // independent path: the written PNG decoded by pngjs, classified by the engine directly
    const png = PNG.sync.read(fs.readFileSync(path.join(out, rec.images[0].file!)));
    const cls = findModel(manifest, 'tiny-vit-classifier')!;
    const engine = createClassifierEngine(nodeOrtHost({ modelsDir: MODELS, threads: 1 }));
    const req = { entry: cls, override: 'wasm' as const, source: { kind: 'app' as const } };
    const r = await engine.classify(req, [{ width: png.width, height: png.height, data: new Uint8ClampedArray(png.data) }], { heatmap: false });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(s.label).toBe(r.value.results[0].predicted);
    expect(s.positiveProbability).toBeCloseTo(r.value.results[0].probabilities[cls.labels!.indexOf('PNEUMONIA')], 5);
    await engine.reset();
  });

  it('rejects bad arguments with the cause', () => {
    expect(() => parseGenerateArgs(['--steps', '0'])).toThrow(/--steps must be an integer/);
    expect(() => parseGenerateArgs(['--side', 'left'])).toThrow(/--side must be base, lora or both/);
    expect(() => parseGenerateArgs(['--bogus'])).toThrow(/unknown argument --bogus/);
  });
});

describe('generate engine', () => {
  it('cancels between steps, keeps working afterwards, and the two-graph layout gives the same images as the scaled one', async () => {
    const engine = createSdEngine(nodeGenerateHost(MODELS, 1));
    const req = { entry: tiny, override: 'wasm' as const, source: { kind: 'app' as const } };
    const p = { prompt: 'a normal chest X-ray', steps: 6, guidanceScale: 1, seed: 11, sides: ['base' as const, 'lora' as const] };
    let steps = 0;
    const cancelled = await engine.generate(req, p, (e) => {
      if (e.kind === 'step' && ++steps === 2) void engine.cancel();
    });
    expect(cancelled).toEqual({ ok: false, message: expect.stringMatching(/^Cancelled: generation cancelled before step 3 of 6/) });
    expect(steps).toBe(2);
    const ok = await engine.generate(req, p);
    expect(ok.ok).toBe(true);
    if (!ok.ok) return;
    expect(ok.value.report.layout).toBe('scaled');
    // the same model without unet_scaled: the two-graph layout
    const two: ModelEntry = { ...tiny, id: 'tiny-sd-two-graph', variants: { fp32: { ...tiny.variants.fp32!, files: tiny.variants.fp32!.files.filter((f) => f.role !== 'unet_scaled') } } };
    const r2 = await engine.generate({ ...req, entry: two }, p);
    expect(r2.ok && r2.value.report.layout).toBe('two-graph');
    if (!r2.ok) return;
    for (let i = 0; i < 2; i++) {
      const a = ok.value.images[i].rgba;
      const b = r2.value.images[i].rgba;
      let worst = 0;
      for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]));
      expect(worst).toBeLessThanOrEqual(1);
    }
    await engine.reset();
  });

  it('serialises its calls: a release asked for during a generation waits for it, and generations queue (same images as one by one)', async () => {
    const engine = createSdEngine(nodeGenerateHost(MODELS, 1));
    const req = { entry: tiny, override: 'wasm' as const, source: { kind: 'app' as const } };
    const p = { prompt: 'a normal chest X-ray', steps: 3, guidanceScale: 1, seed: 4, sides: ['base' as const] };
    const order: string[] = [];
    const g1 = engine.generate(req, p).then((r) => (order.push('g1'), r));
    const rel = engine.release('tiny-sd').then(() => order.push('release'));
    const g2 = engine.generate(req, { ...p, seed: 5 }).then((r) => (order.push('g2'), r));
    const [r1, , r2] = await Promise.all([g1, rel, g2]);
    // without the queue the release frees the sessions under g1's UNet loop and g1 fails
    expect(r1.ok && r2.ok).toBe(true);
    expect(order).toEqual(['g1', 'release', 'g2']);
    const again = await engine.generate(req, p);
    expect(again.ok && r1.ok && Array.from(again.value.images[0].rgba)).toEqual(r1.ok && Array.from(r1.value.images[0].rgba));
    await engine.reset();
  });

  it('refuses SD 1.5 (real sizes) on WASM with the numbers, before reading any file', async () => {
    let reads = 0;
    const host = { ...nodeGenerateHost(MODELS, 1), reader: () => async () => { reads++; throw new Error('must not read'); } };
    const engine = createSdEngine(host);
    const r = await engine.load({ entry: sd15, override: 'wasm', source: { kind: 'app' } });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.message).toMatch(/3\.\d GB of weights \(text_encoder \+ unet_scaled \+ vae_decoder\).*more than the 4 GiB a WebAssembly heap can address/);
    expect(reads).toBe(0);
  });
});

describe('size check (fit.ts)', () => {
  it('SD 1.5 fp32 on WASM: refused; fp16 on a WebGPU adapter with 4 GiB buffers: fits; over a 1 GiB buffer limit: refused', () => {
    const v32 = sd15.variants.fp32!;
    const w = checkSdFit({ entry: sd15, variant: v32, layout: 'scaled', backend: 'wasm', gpu: noGpu, unetBatch: 1 });
    expect(w.ok).toBe(false);
    expect(w.weightsBytes).toBe(492265168 + 1093452 + 3438167536 + 198093728);
    const gpu = { available: true, shaderF16: true, maxBufferSize: 4 * 1024 ** 3, maxStorageBufferBindingSize: 4 * 1024 ** 3 - 4 };
    const v16 = sd15.variants.fp16!;
    expect(checkSdFit({ entry: sd15, variant: v16, layout: 'scaled', backend: 'webgpu', gpu, unetBatch: 1 }).ok).toBe(true);
    const small = checkSdFit({ entry: sd15, variant: v16, layout: 'scaled', backend: 'webgpu', gpu: { ...gpu, maxBufferSize: 1024 ** 3, maxStorageBufferBindingSize: 1024 ** 3 } });
    expect(small.ok).toBe(false);
    expect(small.message).toMatch(/unet_scaled_fp16\.onnx \(1\.6 GB\) exceed the adapter's buffer limit \(1\.0 GB\)/);
    const dm = checkSdFit({ entry: sd15, variant: v16, layout: 'scaled', backend: 'webgpu', gpu, deviceMemoryGiB: 2 });
    expect(dm.ok).toBe(false);
    expect(dm.message).toMatch(/reports 2 GiB of memory/);
  });
  it('layout choice and download list: scaled wins, and only its files are fetched', () => {
    const v = tiny.variants.fp32!;
    expect(chooseLayout(tiny, v)).toEqual({ layout: 'scaled', hasLora: true });
    expect(filesForLayout(v, 'scaled').map((f) => f.role).sort()).toEqual(['scheduler_config', 'text_encoder', 'tokenizer', 'unet_scaled', 'vae_decoder']);
    expect(filesForLayout(v, 'two-graph').map((f) => f.role).sort()).toEqual(['scheduler_config', 'text_encoder', 'tokenizer', 'unet', 'unet_lora', 'vae_decoder']);
    expect(defaultModelId(manifest.models, 'sd')).toBe(manifest.models.some((m) => m.id === 'cxr-ldm-lcm') ? 'cxr-ldm-lcm' : 'tiny-sd');
  });
  it('composeGrid places cells with gaps and upscales', () => {
    const px = (v: number) => ({ width: 1, height: 1, data: Uint8ClampedArray.of(v, v, v, 255) });
    const g = composeGrid([[px(10), px(20)], [px(30), null]], 1, 2);
    expect([g.width, g.height]).toEqual([7, 7]);
    expect(g.data[(1 * 7 + 1) * 4]).toBe(10);
    expect(g.data[(2 * 7 + 5) * 4]).toBe(20);
    expect(g.data[(5 * 7 + 2) * 4]).toBe(30);
    expect(g.data[(5 * 7 + 5) * 4]).toBe(24);
  });
});
