/**
 * `npm run segment-eval -- DIR [--model ID|hf:OWNER/NAME[@REV]] [--prompt box|center-click] [--dtype fp32|int8|fp16]
 *                              [--limit N] [--threads N] [--models-dir D] [--hub URL]`
 *
 * Dice / IoU of a SAM-family model on a folder in the layout of ../shared/data/cxr-lung-masks (images/,
 * masks/<name>_mask.png with 255 lung, 127 ignore, 0 background, boxes.json with right_lung / left_lung boxes).
 * Argument parsing and file I/O around the app's own operations (app/services/sam.ts: evaluateImage), run by
 * the same segment engine through the inference service: model files size- and sha256-verified against the
 * manifest, the variant chosen by the execution plan (--dtype prefers one where the model has it).
 * Prints one line per image (an image or mask that cannot be read or scored is a FAILED line naming the cause, and
 * the run goes on), then the summary (mean, median, 10th percentile per lung; skipped and failed images) as JSON on
 * the last line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Dtype } from '../lib/models/manifest-types';
import { findModel, parseManifest } from '../lib/models/manifest';
import { errorMessage, type ModelRequest } from '../lib/runtime/outcome';
import { imageName, parseBoxes, summarizeEval, type EvalFailure, type EvalPrompt, type EvalRow } from '../lib/sam/eval';
import { defaultModelId } from '../lib/models/default-model';
import { decodeImageFileNode } from '../platform/node/decode';
import { readInputFile } from '../platform/node/read-input';
import { nodeSegmentEngines } from '../platform/node/engines';
import { nodeHubModelFiles } from '../platform/node/hub-files';
import { entrySource } from '../lib/hub/source';
import { resolveHubModel } from '../services/hub';
import { nodePlanInputs } from '../platform/node/ort';
import { InferenceService } from '../services/inference';
import { evalFolderPlan, evaluateImage, loadSegmentModel } from '../services/sam';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const HELP = `usage: npm run segment-eval -- DIR [--model ID|hf:OWNER/NAME[@REV]] [--prompt box|center-click] [--dtype fp32|int8|fp16] [--limit N] [--threads N] [--models-dir DIR] [--hub URL]
  hf:OWNER/NAME[@REV]: a SAM repo in the transformers.js ONNX layout, read from --hub (a mirror, else $CXR_HUB_BASE, else
  https://huggingface.co); its files are cached under $CXR_HUB_CACHE and sha256-checked. Published SAM graphs take no
  box input: use --prompt center-click with them.`;

export interface SegmentEvalOptions {
  dir: string;
  model?: string;
  prompt: EvalPrompt;
  modelsDir: string;
  /** Hub base URL for an `hf:owner/name` model (--hub, else $CXR_HUB_BASE, else https://huggingface.co). */
  hubBase?: string;
  /** Preferred variant (the plan's choice when the model has no such variant). */
  dtype?: Dtype;
  limit?: number;
  threads?: number;
  log?: (line: string) => void;
}

const fmt = (r: EvalRow) => `right_lung dice ${r.lungs.right_lung.dice.toFixed(4)} iou ${r.lungs.right_lung.iou.toFixed(4)}\tleft_lung dice ${r.lungs.left_lung.dice.toFixed(4)} iou ${r.lungs.left_lung.iou.toFixed(4)}`;

export async function segmentEval(o: SegmentEvalOptions) {
  const log = o.log ?? ((l: string) => console.log(l));
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(o.modelsDir, 'manifest.json'), 'utf8')));
  const id = o.model ?? defaultModelId(manifest.models, 'sam');
  // A Hub repo is read (config, file list with sha256) and becomes an entry like the manifest's (issue 20.2).
  const entry = id?.startsWith('hf:') ? await resolveHubModel(id, { hubBase: o.hubBase }) : id ? findModel(manifest, id) : undefined;
  if (!entry || entry.family !== 'sam') throw new Error(entry ? `${id} is a ${entry.family} model, not SAM-family` : `no SAM-family model ${id ?? ''} in ${o.modelsDir}/manifest.json`);
  const boxesPath = path.join(o.dir, 'boxes.json');
  if (!fs.existsSync(boxesPath) || !fs.existsSync(path.join(o.dir, 'images')) || !fs.existsSync(path.join(o.dir, 'masks'))) {
    throw new Error(`${o.dir}: needs images/, masks/<name>_mask.png and boxes.json (the cxr-lung-masks layout)`);
  }
  let parsed;
  try {
    parsed = parseBoxes(JSON.parse(fs.readFileSync(boxesPath, 'utf8')));
  } catch (e) {
    throw new Error(`${boxesPath}: ${errorMessage(e)}`);
  }
  const { boxes, skipped: boxSkipped } = parsed;

  const nodeOpts = { modelsDir: o.modelsDir, threads: o.threads ?? 1, preferDtype: o.dtype };
  // A Hub model's files come from its repo (cached under $CXR_HUB_CACHE), the others' from the models folder.
  const inference = new InferenceService({ files: nodeHubModelFiles(o.modelsDir), planInputs: nodePlanInputs(nodeOpts), engines: nodeSegmentEngines(nodeOpts) });
  const req: ModelRequest = { entry, override: 'wasm', source: entrySource(entry, { kind: 'local', files: new Map(), name: o.modelsDir }) };
  const info = await loadSegmentModel(inference, req);
  const engine = inference.engine<ReturnType<typeof nodeSegmentEngines>['sam']>('sam');

  const images = fs.readdirSync(path.join(o.dir, 'images')).filter((f) => /\.(png|jpe?g)$/i.test(f)).sort();
  const masks = new Set(fs.readdirSync(path.join(o.dir, 'masks')).filter((f) => /_mask\.png$/i.test(f)).map((f) => f.replace(/_mask\.png$/i, '')));
  const plan = evalFolderPlan(images, boxes, masks, boxSkipped);
  const names = o.limit ? plan.todo.slice(0, o.limit) : plan.todo;
  const rows: EvalRow[] = [];
  const failed: EvalFailure[] = [];
  for (const f of names) {
    const name = imageName(f);
    try {
      const image = await decodeImageFileNode(readInputFile(path.join(o.dir, 'images', f)));
      const mask = await decodeImageFileNode(readInputFile(path.join(o.dir, 'masks', `${name}_mask.png`)));
      const { row } = await evaluateImage(engine, req, { name, image: image.raster, mask: mask.raster, boxes: boxes[name], prompt: o.prompt });
      rows.push(row);
      log(`${name}\t${fmt(row)}`);
    } catch (e) {
      // one unreadable image is a failed row; the rest of the folder is still evaluated
      failed.push({ image: name, message: errorMessage(e) });
      log(`${name}\tFAILED: ${errorMessage(e)}`);
    }
  }
  await inference.release();
  const summary = summarizeEval(entry.id, o.prompt, rows, plan.skipped, failed);
  return { summary: { ...summary, weights: entry.weights, variant: info.report.dtype, backend: info.report.backend }, rows };
}

export function parseSegmentEvalArgs(argv: string[]): SegmentEvalOptions {
  const o: SegmentEvalOptions = { dir: '', prompt: 'box', modelsDir: path.join(ROOT, 'public/models') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = () => {
      const v = Number(val());
      if (!Number.isInteger(v) || v < 1) throw new Error(`${a} must be a positive integer`);
      return v;
    };
    if (a === '--model') o.model = val();
    else if (a === '--prompt') {
      const p = val();
      if (p !== 'box' && p !== 'center-click') throw new Error(`--prompt must be box or center-click, not ${p}`);
      o.prompt = p;
    } else if (a === '--dtype') {
      const d = val();
      if (d !== 'fp32' && d !== 'int8' && d !== 'fp16') throw new Error(`--dtype must be fp32, int8 or fp16, not ${d}`);
      o.dtype = d;
    } else if (a === '--limit') o.limit = int();
    else if (a === '--threads') o.threads = int();
    else if (a === '--models-dir') o.modelsDir = path.resolve(val());
    else if (a === '--hub') o.hubBase = val();
    else if (a === '-h' || a === '--help') throw new Error(HELP);
    else if (a.startsWith('-')) throw new Error(`unknown option ${a}\n${HELP}`);
    else o.dir = path.resolve(a);
  }
  if (!o.dir) throw new Error(`give the folder to evaluate (images/, masks/, boxes.json)\n${HELP}`);
  o.hubBase ??= process.env.CXR_HUB_BASE || undefined;
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { summary } = await segmentEval(parseSegmentEvalArgs(process.argv.slice(2)));
    console.log(JSON.stringify(summary));
  } catch (e) {
    if (errorMessage(e) === HELP) {
      console.log(HELP);
      process.exit(0);
    }
    console.error(`segment-eval: ${errorMessage(e)}`);
    process.exit(1);
  }
}
