/**
 * End-to-end parity in Node (onnxruntime-web, wasm): the app's SAM pipeline (app/lib/sam) on the synthetic
 * image and prompts of tests/segment-goldens, against each architecture's own PyTorch pipeline (transformers
 * SamModel + SamProcessor; segment_anything SamPredictor), for every fixture layout.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, fileByRole } from '../../../app/lib/models/manifest';
import { decodePngNode } from '../../../app/platform/node/decode';
import { SamPipeline, samSettings, prepareSamInput, type SamPrompt, type TensorFactory } from '../../../app/lib/sam';
import { REPO_ROOT, readBytes } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
ort.env.logLevel = 'error';

const GOLD = path.join(REPO_ROOT, 'tests/segment-goldens');
const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const tensor: TensorFactory = (type, data, dims) => new ort.Tensor(type, data as Float32Array, dims as number[]);

interface T { dims: number[]; data: number[] }
interface Golden {
  model: string;
  layout: string;
  case: string;
  prompts: { points?: number[][]; labels?: number[]; box?: number[]; mask_from?: string; mask_index?: number };
  outputs: { low_res_logits: T; iou_predictions: T; mask_logits: T };
  meta: { pixel_values?: T };
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>, off = 0): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[off + i]));
  return m;
}

async function pipelineFor(id: string): Promise<SamPipeline> {
  const entry = findModel(manifest, id)!;
  const v = entry.variants.fp32!;
  const open = (role: string) => ort.InferenceSession.create(readBytes(path.join(MODELS, fileByRole(v, role)!.path)), { executionProviders: ['wasm'] });
  return new SamPipeline(tensor, await open('image_encoder'), await open('prompt_decoder'), samSettings(entry));
}

export function promptOf(g: Golden, low?: Record<string, Float32Array[]>): SamPrompt {
  const p = g.prompts;
  return {
    points: (p.points ?? []).map(([x, y], i) => ({ x, y, label: p.labels![i] as 0 | 1 })),
    box: p.box as SamPrompt['box'],
    maskInput: p.mask_from ? low![p.mask_from][p.mask_index!] : undefined,
  };
}

const image = decodePngNode(readBytes(path.join(GOLD, 'image.png')));
const ids = fs.readdirSync(GOLD).filter((d) => fs.statSync(path.join(GOLD, d)).isDirectory());

describe('SAM pipeline parity vs PyTorch (Node, wasm)', () => {
  it('finds goldens for every fixture layout', () => {
    expect(ids.sort()).toEqual(['tiny-sam', 'tiny-sam-hf', 'tiny-sam-onnx']);
  });
  for (const id of ids) {
    it(`${id}: preprocessing, low-res logits, IoU and full-size logits within 1e-4`, async () => {
      const pipe = await pipelineFor(id);
      const cases = fs.readdirSync(path.join(GOLD, id)).sort((a, b) => (a.includes('mask') ? 1 : 0) - (b.includes('mask') ? 1 : 0));
      const emb = await pipe.encode(image);
      const low: Record<string, Float32Array[]> = {};
      const report: string[] = [];
      for (const f of cases) {
        const g = JSON.parse(fs.readFileSync(path.join(GOLD, id, f), 'utf8')) as Golden;
        if (g.meta.pixel_values) {
          const x = prepareSamInput(image, pipe.settings.pre);
          expect(maxAbs(x.data, g.meta.pixel_values.data)).toBeLessThan(1e-5);
        }
        const d = await pipe.decode(emb, promptOf(g, low), { logits: true });
        low[g.case] = d.lowRes;
        const M = g.outputs.iou_predictions.dims[0];
        expect(d.iou.length).toBe(M);
        const m = g.outputs.low_res_logits.dims[1];
        const plane = g.outputs.mask_logits.dims[1] * g.outputs.mask_logits.dims[2];
        let dl = 0, df = 0;
        for (let k = 0; k < M; k++) {
          dl = Math.max(dl, maxAbs(d.lowRes[k], g.outputs.low_res_logits.data, k * m * m));
          df = Math.max(df, maxAbs(d.logits![k], g.outputs.mask_logits.data, k * plane));
        }
        const di = maxAbs(d.iou, g.outputs.iou_predictions.data);
        report.push(`${g.case}: low ${dl.toExponential(1)} full ${df.toExponential(1)} iou ${di.toExponential(1)}`);
        expect(dl).toBeLessThan(1e-4);
        expect(df).toBeLessThan(1e-4);
        expect(di).toBeLessThan(1e-4);
      }
      console.log(`${id} (${pipe.itf.layout}): ${report.join('; ')}`);
    });
  }
});
