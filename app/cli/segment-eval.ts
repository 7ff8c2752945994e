/**
 * `npm run segment-eval -- DIR [--model ID] [--prompt box|center-click] [--limit N] [--threads N] [--models-dir D]`
 *
 * Dice / IoU of a SAM-family model on a folder in the layout of ../shared/data/cxr-lung-masks (images/,
 * masks/<name>_mask.png with 255 lung, 127 ignore, 0 background, boxes.json with right_lung / left_lung boxes).
 * Same modules as the app (app/lib/segment: preprocessing, prompts, upscale, threshold, IoU choice, per-lung split)
 * on onnxruntime-web's Node build (WASM). Prints one line per image, then the summary (mean, median, 10th
 * percentile per lung) as JSON on the last line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { decodeImageFileNode } from '../platform/node/decode';
import { rasterToGray } from '../lib/imaging/raster';
import { fileByRole, findModel, parseManifest } from '../lib/models/manifest';
import type { ModelEntry } from '../lib/models/manifest-types';
import { SamPipeline, samSettings, type TensorFactory } from '../lib/segment/pipeline';
import { imageName, LUNGS, lungPrompt, parseBoxes, scoreLung, splitLungs, summarizeEval, type EvalPrompt, type EvalRow } from '../lib/segment/eval';
import { defaultSegmentModelId } from '../lib/segment/models';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface SegmentEvalOptions {
  dir: string;
  model?: string;
  prompt: EvalPrompt;
  modelsDir: string;
  limit?: number;
  threads?: number;
  log?: (line: string) => void;
}

export async function openSamPipeline(modelsDir: string, entry: ModelEntry): Promise<SamPipeline> {
  const v = entry.variants.fp32 ?? Object.values(entry.variants)[0];
  if (!v) throw new Error(`${entry.id}: no variant`);
  const open = async (role: string) => {
    const f = fileByRole(v, role);
    if (!f) throw new Error(`${entry.id}: the manifest lists no ${role}`);
    return ort.InferenceSession.create(fs.readFileSync(path.join(modelsDir, f.path)), { executionProviders: ['wasm'], graphOptimizationLevel: 'all' });
  };
  const tensor: TensorFactory = (type, data, dims) => new ort.Tensor(type, data as Float32Array, dims as number[]);
  return new SamPipeline(tensor, await open('image_encoder'), await open('prompt_decoder'), samSettings(entry));
}

export async function segmentEval(o: SegmentEvalOptions) {
  const log = o.log ?? ((l: string) => console.log(l));
  ort.env.wasm.numThreads = o.threads ?? 1;
  ort.env.logLevel = 'error';
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(o.modelsDir, 'manifest.json'), 'utf8')));
  const id = o.model ?? defaultSegmentModelId(manifest.models);
  const entry = id ? findModel(manifest, id) : undefined;
  if (!entry || entry.family !== 'sam') throw new Error(`no SAM-family model ${id ?? ''} in ${o.modelsDir}/manifest.json`);
  const boxesPath = path.join(o.dir, 'boxes.json');
  if (!fs.existsSync(boxesPath) || !fs.existsSync(path.join(o.dir, 'images')) || !fs.existsSync(path.join(o.dir, 'masks'))) {
    throw new Error(`${o.dir}: needs images/, masks/<name>_mask.png and boxes.json (the cxr-lung-masks layout)`);
  }
  const { boxes, skipped } = parseBoxes(JSON.parse(fs.readFileSync(boxesPath, 'utf8')));
  const pipe = await openSamPipeline(o.modelsDir, entry);
  let names = fs.readdirSync(path.join(o.dir, 'images')).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  const missing = names.filter((f) => !boxes[imageName(f)] || !fs.existsSync(path.join(o.dir, 'masks', `${imageName(f)}_mask.png`)));
  names = names.filter((f) => !missing.includes(f));
  if (o.limit) names = names.slice(0, o.limit);
  const rows: EvalRow[] = [];
  for (const f of names) {
    const name = imageName(f);
    const img = await decodeImageFileNode(fs.readFileSync(path.join(o.dir, 'images', f)));
    const mask = await decodeImageFileNode(fs.readFileSync(path.join(o.dir, 'masks', `${name}_mask.png`)));
    const { width: w, height: h } = img.raster;
    const truth = splitLungs(rasterToGray(mask.raster), w, h, boxes[name]);
    const emb = await pipe.encode(img.raster);
    const row: EvalRow = { image: name, width: w, height: h, lungs: {} as EvalRow['lungs'] };
    for (const lung of LUNGS) {
      const d = await pipe.decode(emb, lungPrompt(o.prompt, boxes[name][lung]), { masks: 'best' });
      row.lungs[lung] = { ...scoreLung(d.masks[d.best], truth[lung], truth.ignore), predictedIou: d.iou[d.best] };
    }
    rows.push(row);
    log(`${name}\tright_lung dice ${row.lungs.right_lung.dice.toFixed(4)} iou ${row.lungs.right_lung.iou.toFixed(4)}\tleft_lung dice ${row.lungs.left_lung.dice.toFixed(4)} iou ${row.lungs.left_lung.iou.toFixed(4)}`);
  }
  const summary = summarizeEval(entry.id, o.prompt, rows, [...new Set([...skipped, ...missing.map(imageName)])]);
  return { summary: { ...summary, weights: entry.weights }, rows };
}

function parseArgs(argv: string[]): SegmentEvalOptions {
  const o: SegmentEvalOptions = { dir: '', prompt: 'box', modelsDir: path.join(ROOT, 'public/models') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--model') o.model = val();
    else if (a === '--prompt') {
      const p = val();
      if (p !== 'box' && p !== 'center-click') throw new Error(`--prompt must be box or center-click, not ${p}`);
      o.prompt = p;
    } else if (a === '--limit') o.limit = Number(val());
    else if (a === '--threads') o.threads = Number(val());
    else if (a === '--models-dir') o.modelsDir = path.resolve(val());
    else if (a === '-h' || a === '--help') {
      console.log('usage: npm run segment-eval -- DIR [--model ID] [--prompt box|center-click] [--limit N] [--threads N] [--models-dir DIR]');
      process.exit(0);
    } else if (a.startsWith('-')) throw new Error(`unknown option ${a}`);
    else o.dir = path.resolve(a);
  }
  if (!o.dir) throw new Error('give the folder to evaluate (images/, masks/, boxes.json)');
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  segmentEval(parseArgs(process.argv.slice(2)))
    .then(({ summary }) => console.log(JSON.stringify(summary)))
    .catch((e) => {
      console.error(`segment-eval: ${(e as Error).message}`);
      process.exit(1);
    });
}
