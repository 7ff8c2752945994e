/**
 * One implementation per job (issue 20.3). Where the app keeps its own code beside @huggingface/transformers, this
 * shows both give the same numbers on the hub fixtures, and both equal PyTorch's (the goldens of
 * `cxr-export hub-fixtures`, made with transformers' PIL image processors and SamProcessor.post_process_masks):
 *   - image preprocessing: the app's Pillow-exact resize + normalise (lib/imaging/preprocess.ts, which the project's
 *     trained models need) vs transformers.js's image processor from the same preprocessor_config.json;
 *   - SAM mask post-processing: the app's upscale (lib/sam/postprocess.ts, run in the worker on every click) vs
 *     transformers.js's SamImageProcessor.post_process_masks;
 *   - tokenizers: one implementation (transformers.js's PreTrainedTokenizer inside lib/clip/tokenize.ts); the ids
 *     equal the goldens' input_ids.
 */
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ensureHubFixtures } from '../helpers/hub-fixtures';
import { REPO_ROOT } from '../helpers/shared';
import { nodeTransformers } from '../../../app/platform/node/ort';
import { decodePngNode } from '../../../app/platform/node/decode';
import { toModelInputBatch } from '../../../app/lib/imaging/preprocess';
import { preprocessingFromConfig, tokenId } from '../../../app/lib/hub/entry';
import { longestSideShape } from '../../../app/lib/sam/geometry';
import { upscaleMaskLogits } from '../../../app/lib/sam/postprocess';
import { prepareSamInput } from '../../../app/lib/sam/preprocess';
import { loadClipTokenizer } from '../../../app/lib/clip/tokenize';

const ROOT = path.join(REPO_ROOT, 'tests', '.hub-fixtures');
const repo = (name: string, file: string) => JSON.parse(fs.readFileSync(path.join(ROOT, 'cxr-fixtures', name, file), 'utf8'));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const golden = (name: string): any => JSON.parse(fs.readFileSync(path.join(ROOT, '_goldens', `${name}.json`), 'utf8'));
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

beforeAll(() => {
  if (!ensureHubFixtures()) throw new Error(`${ROOT} cannot be written without PyTorch in .venv (npm run setup)`);
}, 300_000);

describe('app preprocessing = transformers.js image processor = PyTorch', () => {
  it.each(['tiny-clip', 'tiny-siglip', 'tiny-vit-cxr'])('%s: pixel_values', async (name) => {
    const t = await nodeTransformers();
    const g = golden(name);
    const pp = repo(name, 'preprocessor_config.json');
    const raster = decodePngNode(new Uint8Array(fs.readFileSync(path.join(ROOT, '_goldens', g.image))));
    const ours = toModelInputBatch([raster], preprocessingFromConfig(pp, name));
    // The class preprocessor_config.json names (what AutoImageProcessor picks), built from the parsed JSON: no fetch.
    const proc = new (t as unknown as Record<string, new (c: object) => (i: unknown) => Promise<{ pixel_values: { data: Float32Array } }>>)[pp.image_processor_type](pp);
    const rgb = new Uint8ClampedArray(raster.width * raster.height * 3);
    for (let i = 0, j = 0; i < raster.data.length; i += 4, j += 3) rgb.set(raster.data.subarray(i, i + 3), j);
    const lib = (await (proc as unknown as (i: unknown) => Promise<{ pixel_values: { data: Float32Array } }>)(new t.RawImage(rgb, raster.width, raster.height, 3))).pixel_values.data;
    const dLib = maxDiff(ours, lib);
    const dTorch = maxDiff(ours, g.inputs.pixel_values.data);
    console.log(`${name} pixel_values: app vs transformers.js ${dLib.toExponential(2)}, app vs PyTorch ${dTorch.toExponential(2)}`);
    expect(dLib).toBeLessThan(1e-5);
    expect(dTorch).toBeLessThan(1e-5);
  });

  it('tiny-sam: the app SAM input (longest-side resize, normalise, pad) = PyTorch pixel_values', () => {
    const g = golden('tiny-sam');
    const pp = repo('tiny-sam', 'preprocessor_config.json');
    const raster = decodePngNode(new Uint8Array(fs.readFileSync(path.join(ROOT, '_goldens', g.image))));
    const x = prepareSamInput(raster, { size: pp.size.longest_edge, mean: pp.image_mean, std: pp.image_std });
    const d = maxDiff(x.data, g.inputs.pixel_values.data);
    console.log(`tiny-sam pixel_values: app vs PyTorch ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-5);
  });
});

describe('SAM mask post-processing: app = transformers.js post_process_masks = PyTorch', () => {
  it('pred_masks (32×32) → logits at the original 64×48', async () => {
    const t = await nodeTransformers();
    const g = golden('tiny-sam');
    const pp = repo('tiny-sam', 'preprocessor_config.json');
    const [H, W] = g.original_size as [number, number];
    const geo = longestSideShape(W, H, pp.size.longest_edge);
    const processor = new (t as unknown as Record<string, new (c: object) => { post_process_masks(m: unknown, o: number[][], r: number[][], opts: object): Promise<{ data: Float32Array }[]> }>).SamImageProcessor(pp);
    for (const [k, c] of Object.entries(g.cases) as [string, { outputs: Record<string, { dims: number[]; data: number[] }> }][]) {
      const pred = c.outputs.pred_masks;
      const m = pred.dims[3];
      const ours = [0, 1, 2].map((i) => upscaleMaskLogits(Float32Array.from(pred.data.slice(i * m * m, (i + 1) * m * m)), m, geo));
      const lib = (await processor.post_process_masks(new t.Tensor('float32', Float32Array.from(pred.data), pred.dims), [[H, W]], [[geo.resizedH, geo.resizedW]], { binarize: false }))[0].data;
      const flat = Float32Array.from(ours.flatMap((o) => Array.from(o)));
      const dLib = maxDiff(flat, lib);
      const dTorch = maxDiff(flat, c.outputs.masks.data);
      console.log(`tiny-sam/${k} masks: app vs transformers.js ${dLib.toExponential(2)}, app vs PyTorch ${dTorch.toExponential(2)}`);
      expect(dLib).toBeLessThan(1e-4);
      expect(dTorch).toBeLessThan(1e-4);
    }
  });
});

describe('tokenizers: transformers.js inside the app tokenizer gives the goldens input_ids', () => {
  it.each(['tiny-clip', 'tiny-siglip'])('%s', async (name) => {
    const g = golden(name);
    const tok = repo(name, 'tokenizer.json');
    const cfg = repo(name, 'config.json');
    const tc = repo(name, 'tokenizer_config.json');
    const L = g.inputs.input_ids.dims[1] as number;
    const pad = tokenId(tok, tc.pad_token) ?? cfg.text_config.pad_token_id;
    const b = loadClipTokenizer(await nodeTransformers(), tok, { context_length: cfg.text_config.max_position_embeddings, pad_token_id: pad }).encodeBatch(g.prompts);
    const C = b.dims[1];
    // the golden pads to the longest prompt (CLIP) or to max_length (SigLIP); the app always pads to context_length
    const ours = g.prompts.map((_: string, i: number) => Array.from(b.ids.subarray(i * C, i * C + L), Number));
    const want = g.prompts.map((_: string, i: number) => g.inputs.input_ids.data.slice(i * L, (i + 1) * L));
    expect(ours).toEqual(want);
  });
});
