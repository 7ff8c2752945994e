/**
 * Runs every golden written by the Python exporters (tests/goldens/<model-id>/*.json:
 * {inputs: {name: {dims, dtype, data}}, outputs: {...}, meta}) through onnxruntime-web (Node, wasm) on the graphs in
 * public/models, and checks the TypeScript tokenizer / preprocessing against them. A golden whose model or graph is
 * missing fails (in CI and wherever ../shared is present; see lacks() in helpers/shared.ts), except the pipeline
 * goldens listed in PENDING, which are `todo` until the app implements what they check.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, chooseVariant, fileByRole } from '../../app/lib/models/manifest';
import type { ModelEntry } from '../../app/lib/models/manifest-types';
import { loadClipTokenizer } from '../../app/lib/clip/tokenize';
import { nodeTransformers } from '../../app/platform/node/ort';
import { zeroShot } from '../../app/lib/clip/zero-shot';
import { decodeImageFileNode } from '../../app/platform/node/decode';
import { prepareClassifierBatch, interpretClassifierOutputs, classifierThreshold } from '../../app/lib/classifier/pipeline';
import { REPO_ROOT, SHARED_PRESENT, hasShared, lacks, sharedPath, readBytes } from './helpers/shared';
import { runSd } from './helpers/sd';
import { LCMScheduler } from '../../app/lib/sd/lcm-scheduler';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

// Overridable so the runner itself can be exercised on fixtures.
const GOLDENS = process.env.CXR_GOLDENS_DIR ?? path.join(REPO_ROOT, 'tests/goldens');
const MODELS = process.env.CXR_MODELS_DIR ?? path.join(REPO_ROOT, 'public/models');
const manifestPath = path.join(MODELS, 'manifest.json');
const manifest = fs.existsSync(manifestPath) ? parseManifest(JSON.parse(fs.readFileSync(manifestPath, 'utf8'))) : null;

interface TensorJson { dims: number[]; dtype: 'float32' | 'int64'; data: number[] }
interface Golden { inputs: Record<string, TensorJson>; outputs: Record<string, TensorJson>; meta?: Record<string, unknown> }

function toTensor(t: TensorJson): ort.Tensor {
  return t.dtype === 'int64'
    ? new ort.Tensor('int64', BigInt64Array.from(t.data.map((x) => BigInt(x))), t.dims)
    : new ort.Tensor('float32', Float32Array.from(t.data), t.dims);
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(Number(a[i]) - Number(b[i])));
  return m;
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();
function session(file: string): Promise<ort.InferenceSession> {
  if (!sessions.has(file)) sessions.set(file, ort.InferenceSession.create(fs.readFileSync(file), { executionProviders: ['wasm'] }));
  return sessions.get(file)!;
}

/** The graph named by meta.graph, else the graph of `entry` whose declared inputs are exactly the golden's inputs. */
function graphFor(entry: ModelEntry, inputs: string[], metaGraph?: unknown): string | null {
  const variant = entry.variants.fp32 ?? chooseVariant(entry, { backend: 'wasm', shaderF16: false });
  if (!variant || inputs.length === 0) return null;
  if (typeof metaGraph === 'string') {
    const f = variant.files.find((x) => x.path === metaGraph || x.path.endsWith('/' + metaGraph));
    if (f) return path.join(MODELS, f.path);
  }
  const want = [...inputs].sort().join(',');
  for (const [role, io] of Object.entries(entry.io ?? {})) {
    if ([...io.inputs].sort().join(',') === want) {
      const f = fileByRole(variant, role);
      if (f) return path.join(MODELS, f.path);
    }
  }
  const only = variant.files.filter((f) => f.path.endsWith('.onnx'));
  return only.length === 1 ? path.join(MODELS, only[0].path) : null;
}

/**
 * Multi-graph pipeline goldens no single ONNX graph reproduces: they check a TypeScript pipeline the app does not
 * have yet (the LCM scheduler step and the 4-step SD generation: text encoder -> UNet x4 with the LCM step -> VAE
 * decoder). Listed here as `todo`, not skipped silently; remove an entry when its pipeline test is written.
 */
/** Goldens whose check the app does not implement yet (none: the SD ones run through app/lib/sd). */
const PENDING: Record<string, string> = {};

const goldenDirs = fs.existsSync(GOLDENS) ? fs.readdirSync(GOLDENS).filter((d) => fs.statSync(path.join(GOLDENS, d)).isDirectory()) : [];

describe('goldens', () => {
  lacks(goldenDirs.length > 0, `goldens in ${GOLDENS}`);

  for (const id of goldenDirs) {
    const entry = manifest ? findModel(manifest, id) : undefined;
    const files = fs.readdirSync(path.join(GOLDENS, id)).filter((f) => f.endsWith('.json') && f !== 'test-images.json');
    for (const f of files) {
      const golden = JSON.parse(fs.readFileSync(path.join(GOLDENS, id, f), 'utf8')) as Golden;
      if (!golden.inputs || !golden.outputs) continue;
      const kind = golden.meta?.kind ?? (f === 'lcm_timesteps.json' ? 'lcm-timesteps' : undefined);
      if (kind === 'lcm-timesteps') {
        const sched = entry && fileByRole(entry.variants.fp32!, 'scheduler_config');
        if (lacks(!!sched && fs.existsSync(path.join(MODELS, sched.path)), `the scheduler_config.json of ${id}`)) continue;
        it(`${id}/${f}: the TypeScript LCMScheduler.setTimesteps gives diffusers' timesteps`, () => {
          const s = new LCMScheduler(JSON.parse(fs.readFileSync(path.join(MODELS, sched!.path), 'utf8')));
          expect(s.setTimesteps(golden.meta!.num_inference_steps as number)).toEqual(golden.outputs.timesteps.data);
        });
        continue;
      }
      if (kind === 'lcm-step' || kind === 'sd-generation' || kind === 'sd-pipeline') {
        // multi-graph goldens: run through the app's TypeScript scheduler / LCM pipeline (app/lib/sd)
        pipelineGolden(id, f, entry, golden);
        continue;
      }
      const graph = entry ? graphFor(entry, Object.keys(golden.inputs), golden.meta?.graph) : null;
      const pending = PENDING[`${id}/${f}`];
      if (pending) {
        it.todo(`${id}/${f}: ${pending}`);
        continue;
      }
      const what = !entry ? `the model '${id}' in public/models/manifest.json (its golden ${f} is committed)` : `the graph of ${id} that takes the inputs of ${f}`;
      if (Object.keys(golden.inputs).length > 0) it.skipIf(lacks(!!graph && fs.existsSync(graph), what))(`${id}/${f}: ONNX Runtime Web reproduces the PyTorch outputs`, async () => {
        const s = await session(graph!);
        const feeds: Record<string, ort.Tensor> = {};
        for (const [name, t] of Object.entries(golden.inputs)) feeds[name] = toTensor(t);
        const res = await s.run(feeds);
        for (const [name, t] of Object.entries(golden.outputs)) {
          if (!res[name]) continue;
          expect(res[name].dims).toEqual(t.dims);
          const scale = Math.max(1, ...t.data.map((x) => Math.abs(x)));
          expect(maxAbsDiff(res[name].data as Float32Array, t.data)).toBeLessThan(1e-3 * scale);
        }
      });

      // tokenizer check: a golden whose meta lists the prompts behind its input_ids
      const prompts = (golden.meta?.prompts ?? golden.meta?.texts) as string[] | undefined;
      const ids = golden.inputs.input_ids ?? golden.outputs.input_ids;
      const tokFile = entry ? fileByRole(entry.variants.fp32 ?? Object.values(entry.variants)[0]!, 'tokenizer') : undefined;
      if (prompts && ids) {
        const tokPath = tokFile ? path.join(MODELS, tokFile.path) : null;
        it.skipIf(lacks(!!tokPath && fs.existsSync(tokPath), `the tokenizer of ${id} in public/models (its golden ${f} is committed)`))(`${id}/${f}: the TypeScript tokenizer gives the golden input_ids`, async () => {
          const cfg = { ...(entry!.config ?? {}), ...(golden.meta ?? {}) } as { context_length: number; pad_token_id: number };
          const tok = loadClipTokenizer(await nodeTransformers(), fs.readFileSync(tokPath!, 'utf8'), cfg);
          const b = tok.encodeBatch(prompts);
          expect(b.dims).toEqual(ids.dims);
          expect(Array.from(b.ids, Number)).toEqual(ids.data);
        });
      }
    }
  }
});

/** Inside a running test: false when ../shared has the path; throws where ../shared is present; true (skip the rest) elsewhere. */
function lacksSharedNow(rel: string): boolean {
  if (hasShared(rel)) return false;
  if (SHARED_PRESENT) throw new Error(`../shared/${rel} is missing`);
  return true;
}

function f32(t: TensorJson): Float32Array {
  return Float32Array.from(t.data);
}

function pipelineGolden(id: string, f: string, entry: ModelEntry | undefined, golden: Golden): void {
  const meta = golden.meta ?? {};
  const sched = entry && fileByRole(entry.variants.fp32!, 'scheduler_config');
  const ready = !!entry && !!sched && fs.existsSync(path.join(MODELS, sched.path));
  if (meta.kind === 'lcm-step') {
    if (lacks(ready, `the scheduler_config.json of ${id}`)) return;
    it(`${id}/${f}: the TypeScript LCMScheduler.step reproduces it`, () => {
      const s = new LCMScheduler(JSON.parse(fs.readFileSync(path.join(MODELS, sched!.path), 'utf8')));
      s.setTimesteps(4);
      expect(s.timesteps.slice(0, 2)).toEqual([meta.timestep, meta.prev_timestep]);
      const out = s.step(f32(golden.inputs.model_output), meta.timestep as number, f32(golden.inputs.sample), f32(golden.inputs.noise));
      expect(maxAbsDiff(out.prevSample, golden.outputs.prev_sample.data)).toBeLessThan(1e-5);
      expect(maxAbsDiff(out.denoised, golden.outputs.denoised.data)).toBeLessThan(1e-5 * Math.max(1, ...golden.outputs.denoised.data.map(Math.abs)));
    });
    return;
  }
  const unetRole = String(meta.unet ?? 'unet.onnx').replace(/\.onnx$/, '');
  const runs: { label: string; role: string; loraScale: number | null }[] = [{ label: unetRole, role: unetRole, loraScale: null }];
  // the same reference through the one-UNet layout: lora_scale 0 is the base UNet, 1 the LoRA-merged one
  if (entry?.io?.unet_scaled) runs.push({ label: 'unet_scaled', role: 'unet_scaled', loraScale: unetRole === 'unet_lora' ? 1 : 0 });
  if (lacks(ready, `the model ${id} in public/models`)) return;
  for (const r of runs) {
    it(`${id}/${f}: the TypeScript LCM pipeline through ${r.label}${r.loraScale === null ? '' : ` (lora_scale ${r.loraScale})`} reproduces the image within 1e-3`, async () => {
      const res = await runSd(MODELS, entry!, {
        prompt: meta.prompt as string,
        seed: (meta.seed as number | undefined) ?? 0,
        steps: meta.num_inference_steps as number,
        guidance: meta.guidance_scale as number,
        unetRole: r.role,
        loraScale: r.loraScale,
        // sd-generation goldens recorded their latents and noise; sd-pipeline goldens draw both from the seed
        ...(meta.kind === 'sd-generation'
          ? { latents: f32(golden.inputs.latents), noises: Object.keys(golden.inputs).filter((k) => k.startsWith('noise_')).sort().map((k) => f32(golden.inputs[k])) }
          : {}),
      });
      expect(res.inputIds).toEqual(golden.inputs.input_ids.data);
      if (meta.kind === 'sd-pipeline') expect(maxAbsDiff(res.latents, golden.inputs.latents.data)).toBeLessThan(1e-5);
      expect([1, 3, res.height, res.width]).toEqual(golden.outputs.image.dims);
      const d = maxAbsDiff(res.image, golden.outputs.image.data);
      console.log(`${id}/${f} via ${r.label}: max |image - reference| = ${d.toExponential(2)}`);
      expect(d).toBeLessThan(1e-3);
    });
  }
}

const clipEntries = manifest?.models.filter((m) => m.family === 'clip') ?? [];
describe('CLIP models in public/models', () => {
  lacks(clipEntries.length > 0, 'a CLIP model in public/models/manifest.json');
  for (const entry of clipEntries) {
    const v = entry.variants.fp32;
    const tok = v && fileByRole(v, 'tokenizer');
    const txt = v && fileByRole(v, 'text_encoder');
    const img = v && fileByRole(v, 'image_encoder');
    const present = !!(tok && txt && img && [tok, txt, img].every((f) => fs.existsSync(path.join(MODELS, f.path))));
    it.skipIf(lacks(present, `the files of ${entry.id} listed in the manifest`))(`${entry.id}: default prompts tokenize, encode, and zero-shot a real image end to end`, async () => {
      const cfg = entry.config as { context_length: number; pad_token_id: number; logit_scale: number; default_prompts: Record<string, string[]> };
      const tk = loadClipTokenizer(await nodeTransformers(), fs.readFileSync(path.join(MODELS, tok!.path), 'utf8'), cfg);
      const ts = await session(path.join(MODELS, txt!.path));
      const labels = [];
      for (const [label, texts] of Object.entries(cfg.default_prompts)) {
        const b = tk.encodeBatch(texts);
        expect(b.ids.length).toBe(texts.length * cfg.context_length);
        const r = await ts.run({ input_ids: new ort.Tensor('int64', b.ids, b.dims) });
        const D = r.text_embeds.dims[1];
        const data = r.text_embeds.data as Float32Array;
        labels.push({ label, embeds: texts.map((_, i) => data.subarray(i * D, (i + 1) * D)) });
      }
      const KERMANY = 'data/kermany-cxr-224/test/PNEUMONIA';
      if (!entry.preprocessing) throw new Error(`${entry.id}: no preprocessing in the manifest`);
      if (lacksSharedNow(KERMANY)) return;
      const file = fs.readdirSync(sharedPath(KERMANY)).sort()[0];
      const d = await decodeImageFileNode(readBytes(sharedPath(KERMANY, file)));
      const { data, dims } = prepareClassifierBatch([d.raster], entry.preprocessing);
      const is = await session(path.join(MODELS, img!.path));
      const r = await is.run({ pixel_values: new ort.Tensor('float32', data, dims) });
      const [z] = zeroShot(r.image_embeds.data as Float32Array, labels, cfg.logit_scale);
      const total = Object.values(z.probabilities).reduce((a, b) => a + b, 0);
      expect(total).toBeCloseTo(1, 5);
      expect(Object.keys(cfg.default_prompts)).toContain(z.autoLabel);
    });
  }
});

const testImages = path.join(GOLDENS, 'pneumonia-vit', 'test-images.json');
const pvit = manifest ? findModel(manifest, 'pneumonia-vit') : undefined;
describe('pneumonia-vit test-image goldens', () => {
  const ready = fs.existsSync(testImages) && !!pvit && hasShared('data/kermany-cxr-224');
  it.skipIf(lacks(ready, `${testImages}, pneumonia-vit in the manifest and ../shared/data/kermany-cxr-224`))(`decode + preprocess + ORT in Node reproduce Python's probabilities`, async () => {
    const g = JSON.parse(fs.readFileSync(testImages, 'utf8'));
    const list = (Array.isArray(g) ? g : g.images) as { path: string; probabilities: number[] }[];
    const graph = graphFor(pvit!, ['pixel_values'])!;
    const s = await session(graph);
    let maxDiff = 0;
    let disagreements = 0;
    const thr = classifierThreshold(pvit!);
    for (const im of list) {
      const d = await decodeImageFileNode(readBytes(sharedPath('data/kermany-cxr-224', im.path)));
      const { data, dims } = prepareClassifierBatch([d.raster], pvit!.preprocessing!);
      const r = await s.run({ pixel_values: new ort.Tensor('float32', data, dims) }, ['probabilities']);
      const [res] = interpretClassifierOutputs({ probabilities: r.probabilities.data as Float32Array }, 1, pvit!.labels!, classifierThreshold(pvit!));
      maxDiff = Math.max(maxDiff, Math.abs(res.probabilities[pvit!.labels![1]] - im.probabilities[1]));
      if ((res.positiveProbability >= thr) !== (im.probabilities[1] >= thr)) disagreements++;
    }
    console.log(`pneumonia-vit: ${list.length} golden images, max |ΔP(PNEUMONIA)| = ${maxDiff.toExponential(2)}, ${disagreements} label disagreements at t=${thr.toFixed(3)}`);
    // jpeg-js vs libjpeg decoding differ by ±1–2 grey levels on some pixels
    expect(maxDiff).toBeLessThan(0.03);
    expect(disagreements).toBeLessThanOrEqual(1);
  });
});
