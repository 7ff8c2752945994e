/**
 * The TypeScript LCM pipeline (app/lib/generate) on the tiny-sd fixture in Node (onnxruntime-web, wasm) against the
 * fixture's recorded ONNX Runtime generation (tests/goldens/tiny-sd/generation_*.json: fixed latents and noise), with
 * the JS step and with the ONNX step graph the worker uses on WebGPU.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { LCMScheduler, encodePrompt, generateLatentConsistency, lcmStepGraph, parseSdConfig } from '../../../app/lib/generate';
import { loadClipTokenizer } from '../../../app/lib/clip/tokenize';
import { REPO_ROOT } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';
const MODELS = path.join(REPO_ROOT, 'public/models');
const GD = path.join(REPO_ROOT, 'tests/goldens/tiny-sd');
const manifest = JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8'));
const entry = manifest.models.find((m: { id: string }) => m.id === 'tiny-sd');
const cfg = parseSdConfig(entry.config, entry.id);
const sess = (f: string) => ort.InferenceSession.create(fs.readFileSync(path.join(MODELS, 'tiny-sd', f)), { executionProviders: ['wasm'] });
const f32 = (t: { data: number[] }) => Float32Array.from(t.data);

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('tiny-sd generation goldens (ONNX Runtime reference, recorded latents + noise)', () => {
  for (const side of ['base', 'lora'] as const) {
    for (const viaGraph of [false, true]) {
      it(`${side} UNet, step in ${viaGraph ? 'the ONNX step graph' : 'TypeScript'}: image within 1e-4`, async () => {
        const g = JSON.parse(fs.readFileSync(path.join(GD, `generation_${side}.json`), 'utf8'));
        const tok = loadClipTokenizer(fs.readFileSync(path.join(MODELS, 'tiny-sd/tokenizer.json'), 'utf8'), cfg);
        expect(Array.from(tok.encodeBatch([g.meta.prompt]).ids, Number)).toEqual(g.inputs.input_ids.data);
        const te = await sess('text_encoder.onnx');
        const unet = await sess(g.meta.unet);
        const vae = await sess('vae_decoder.onnx');
        const scheduler = new LCMScheduler(JSON.parse(fs.readFileSync(path.join(MODELS, 'tiny-sd/scheduler_config.json'), 'utf8')));
        const stepSession = viaGraph ? await ort.InferenceSession.create(lcmStepGraph({ cfg: false, clip: false }), { executionProviders: ['wasm'] }) : undefined;
        const embeds = await encodePrompt(ort, tok, te, g.meta.prompt, false);
        const steps: number[] = [];
        const r = await generateLatentConsistency(ort, { scheduler, unet: { session: unet, loraScale: null }, vaeDecoder: vae, stepSession }, cfg, embeds, {
          prompt: g.meta.prompt, numInferenceSteps: 4, guidanceScale: 1, seed: 0,
          latents: f32(g.inputs.latents), noises: [0, 1, 2].map((i) => f32(g.inputs[`noise_${i}`])),
        }, { onStep: (p) => steps.push(p.timestep) });
        expect(r.timesteps).toEqual(g.meta.timesteps);
        expect(steps).toEqual(g.meta.timesteps);
        expect(r.width).toBe(cfg.image_size);
        const d = maxAbs(r.image, g.outputs.image.data);
        console.log(`tiny-sd ${side} (${viaGraph ? 'step graph' : 'TS step'}): max |image - golden| = ${d.toExponential(2)}`);
        expect(d).toBeLessThan(1e-4);
      });
    }
  }
});
