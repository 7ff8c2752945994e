/**
 * The worker's WebGPU code path — the LCM step as an ONNX graph fed with the UNet's output tensors
 * (app/lib/sd/step-graph.ts) — run here on wasm in Node against diffusers' pipeline (tests/goldens/tiny-sd/
 * pipeline_*.json, CFG included), with the fixture's recorded latents/noise too. goldens.test.ts covers the JS step.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { REPO_ROOT } from '../helpers/shared';
import { maxAbsDiff, runSd } from '../helpers/sd';
import { parseManifest, findModel } from '../../../app/lib/models/manifest';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';
const MODELS = path.join(REPO_ROOT, 'public/models');
const GD = path.join(REPO_ROOT, 'tests/goldens/tiny-sd');
const entry = findModel(parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8'))), 'tiny-sd')!;

describe('tiny-sd through the ONNX step graph (GPU-resident loop) on wasm', () => {
  for (const f of ['pipeline_base_seed42.json', 'pipeline_base_cfg_seed7.json', 'pipeline_lora_seed42.json']) {
    it(`${f}: unet_scaled + step graph matches diffusers within 1e-3`, async () => {
      const g = JSON.parse(fs.readFileSync(path.join(GD, f), 'utf8'));
      const steps: number[] = [];
      const r = await runSd(MODELS, entry, {
        prompt: g.meta.prompt, seed: g.meta.seed, steps: g.meta.num_inference_steps, guidance: g.meta.guidance_scale,
        unetRole: 'unet_scaled', loraScale: g.meta.side === 'lora' ? 1 : 0, viaStepGraph: true,
      });
      steps.push(...r.timings.stepMs);
      expect(steps).toHaveLength(g.meta.num_inference_steps);
      const d = maxAbsDiff(r.image, g.outputs.image.data);
      console.log(`step graph ${f}: max |image - diffusers| = ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-3);
    });
  }
  it('generation_lora.json (recorded latents and noise) through unet_lora + step graph', async () => {
    const g = JSON.parse(fs.readFileSync(path.join(GD, 'generation_lora.json'), 'utf8'));
    const f32 = (k: string) => Float32Array.from(g.inputs[k].data as number[]);
    const r = await runSd(MODELS, entry, {
      prompt: g.meta.prompt, seed: 0, steps: 4, guidance: 1, unetRole: 'unet_lora', viaStepGraph: true,
      latents: f32('latents'), noises: [f32('noise_0'), f32('noise_1'), f32('noise_2')],
    });
    expect(r.timesteps).toEqual(g.meta.timesteps);
    expect(maxAbsDiff(r.image, g.outputs.image.data)).toBeLessThan(1e-4);
  });
  it('base and LoRA differ (the LoRA is applied) while the same seed gives the same latents', async () => {
    const run = (loraScale: number) => runSd(MODELS, entry, { prompt: 'a chest X-ray showing pneumonia', seed: 5, steps: 2, guidance: 1, unetRole: 'unet_scaled', loraScale });
    const [a, b] = [await run(0), await run(1)];
    expect(maxAbsDiff(a.latents, b.latents)).toBe(0);
    expect(maxAbsDiff(a.image, b.image)).toBeGreaterThan(1e-3);
  });
});
