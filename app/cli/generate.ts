/**
 * Text-to-image in Node with the app's own TypeScript LCM pipeline (app/lib/sd, onnxruntime-web's wasm
 * backend): the same seed gives the same image as the gallery (and as diffusers with
 * torch.Generator("cpu").manual_seed(seed)).
 *
 *   npm run generate -- --model ID --prompt "..." --seed S --steps N [--n K] [--side base|lora|both]
 *                       [--guidance G] [--negative "..."] [--out DIR] [--models-dir public/models] [--threads T]
 *
 * Writes DIR/<model>_s<seed>_<side>.png for seeds S..S+K-1, DIR/grid.png (rows = seeds, columns = sides) and
 * DIR/generation.json (prompt, seeds, steps, guidance, model id and file sha256s, per-image sha256, timesteps, timings
 * and, with --classifier, each image's score): the gallery's export writes the same record for the same request.
 * Argument parsing and file I/O around app/services/sd.ts (the gallery run), through the inference service
 * (model files size- and sha256-verified, the plan's variant) and the app's generate engine.
 * Default model: cxr-ldm-lcm when public/models has it, else the first SD model (see defaultModelId in app/lib/models/default-model.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findModel, parseManifest } from '../lib/models/manifest';
import type { ModelEntry } from '../lib/models/manifest-types';
import { composeGrid } from '../lib/sd/record';
import { defaultModelId } from '../lib/models/default-model';
import { encodePng } from '../lib/imaging/png-encode';
import type { GenerateReport } from '../lib/sd/types';
import type { ClassifierEngine } from '../lib/classifier/engine';
import type { ModelRequest } from '../lib/runtime/outcome';
import { nodeGenerateEngines } from '../platform/node/engines';
import { nodeModelFiles } from '../platform/node/model-files';
import { nodePlanInputs } from '../platform/node/ort';
import { InferenceService } from '../services/inference';
import { galleryRecord, planGallery, runGallery, scoresFrom, type SideChoice } from '../services/sd';

const HELP = `usage: npm run generate -- --model ID --prompt "..." --seed S --steps N [--n K] [--side base|lora|both]
       [--guidance G] [--negative "..."] [--classifier ID] [--out DIR] [--models-dir public/models] [--threads T]`;

export interface GenerateArgs {
  model?: string;
  prompt: string;
  negative: string;
  seed: number;
  steps: number;
  n: number;
  side: SideChoice;
  guidance?: number;
  /** Score each image with this classifier (the gallery scores with the app's chosen one). */
  classifier?: string;
  out: string;
  modelsDir: string;
  threads: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(here, '../..');

export function parseGenerateArgs(argv: string[]): GenerateArgs {
  const a: GenerateArgs = { prompt: 'a chest X-ray showing pneumonia', negative: '', seed: 0, steps: 4, n: 1, side: 'both', out: 'generated', modelsDir: path.join(REPO, 'public/models'), threads: Math.min(2, os.cpus().length) };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${k} needs a value\n${HELP}`);
      return x;
    };
    const int = (name: string, min: number, max: number) => {
      const x = Number(v());
      if (!Number.isInteger(x) || x < min || x > max) throw new Error(`${name} must be an integer in [${min}, ${max}]`);
      return x;
    };
    switch (k) {
      case '--model': a.model = v(); break;
      case '--prompt': a.prompt = v(); break;
      case '--negative': a.negative = v(); break;
      case '--seed': a.seed = int('--seed', 0, 2 ** 53 - 1); break;
      case '--steps': a.steps = int('--steps', 1, 50); break;
      case '--n': a.n = int('--n', 1, 64); break;
      case '--guidance': {
        const g = Number(v());
        if (!Number.isFinite(g) || g < 0) throw new Error('--guidance must be a number >= 0');
        a.guidance = g;
        break;
      }
      case '--side': {
        const s = v();
        if (s !== 'base' && s !== 'lora' && s !== 'both') throw new Error(`--side must be base, lora or both, got ${s}`);
        a.side = s;
        break;
      }
      case '--classifier': a.classifier = v(); break;
      case '--out': a.out = v(); break;
      case '--models-dir': a.modelsDir = path.resolve(v()); break;
      case '--threads': a.threads = int('--threads', 1, 64); break;
      case '-h': case '--help': throw new Error(HELP);
      default: throw new Error(`unknown argument ${k}\n${HELP}`);
    }
  }
  return a;
}

export async function runGenerate(a: GenerateArgs, log: (s: string) => void = (s) => process.stderr.write(s + '\n')) {
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(a.modelsDir, 'manifest.json'), 'utf8')));
  const id = a.model ?? defaultModelId(manifest.models, 'sd');
  const entry: ModelEntry | undefined = id ? findModel(manifest, id) : undefined;
  if (!entry) throw new Error(`no model '${id}' in ${a.modelsDir}/manifest.json (SD models: ${manifest.models.filter((m) => m.family === 'sd').map((m) => m.id).join(', ') || 'none'})`);
  if (entry.family !== 'sd') throw new Error(`${entry.id} is a ${entry.family} model, not a text-to-image (sd) model`);
  const cls = a.classifier ? findModel(manifest, a.classifier) : undefined;
  if (a.classifier && cls?.family !== 'classifier') throw new Error(`no classifier '${a.classifier}' in ${a.modelsDir}/manifest.json`);
  // The app's service and engines with Node's adapters: files size- and sha256-verified, the plan's variant.
  const nodeOpts = { modelsDir: a.modelsDir, threads: a.threads };
  const inference = new InferenceService({ files: nodeModelFiles(a.modelsDir), planInputs: nodePlanInputs(nodeOpts), engines: nodeGenerateEngines(nodeOpts) });
  const source = { kind: 'local' as const, files: new Map<string, Blob>(), name: a.modelsDir };
  const req: ModelRequest = { entry, override: 'wasm', source };
  try {
    const rep = (await inference.ensureSession(req, log)) as GenerateReport;
    const plan = planGallery(entry, rep.hasLora, { prompt: a.prompt, negativePrompt: a.negative, seed: a.seed, numSeeds: a.n, steps: a.steps, guidance: a.guidance, side: a.side });
    if (plan.note) log(plan.note);
    if (entry.weights === 'random-fixture') log(`${entry.id}: RANDOM WEIGHTS (test fixture) — these images mean nothing`);
    const clsReq: ModelRequest | undefined = cls && { entry: cls, override: 'wasm', source };
    fs.mkdirSync(a.out, { recursive: true });
    const engine = inference.engine<ReturnType<typeof nodeGenerateEngines>['sd']>('sd');
    const out = await runGallery(
      {
        generate: (r, p, on) => engine.generate(r, p, on),
        score: clsReq && (async (images) => scoresFrom(cls!, (await inference.run(clsReq, (e: ClassifierEngine) => e.classify(clsReq, images, { heatmap: false }))).results)),
      },
      req,
      plan,
      {
        onEvent: (e) => {
          if (e.kind === 'step') log(`seed ${e.seed} ${e.side}: step ${e.step}/${e.total} ${e.ms.toFixed(0)} ms`);
        },
        onSeed: (_seed, images) => {
          for (const im of images) fs.writeFileSync(path.join(a.out, im.file), im.png);
        },
      },
    );
    if (out.status !== 'done') throw new Error(out.message ?? out.status);
    const rows = plan.seeds.map((seed) => plan.sides.map((side) => out.images.find((i) => i.seed === seed && i.side === side)).map((i) => (i ? { width: i.width, height: i.height, data: i.rgba } : null)));
    const g = composeGrid(rows, 4, Math.max(1, Math.floor(256 / Math.max(...out.images.map((i) => i.width)))));
    fs.writeFileSync(path.join(a.out, 'grid.png'), encodePng(g.data, g.width, g.height, 4));
    const record = { ...galleryRecord({ entry, model: { dtype: rep.dtype, layout: rep.layout, backend: rep.backend }, plan, seeds: out.seeds, images: out.images }), grid: 'grid.png' };
    fs.writeFileSync(path.join(a.out, 'generation.json'), JSON.stringify(record, null, 1) + '\n');
    return record;
  } finally {
    await inference.release();
  }
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  try {
    const args = parseGenerateArgs(process.argv.slice(2));
    const rec = await runGenerate(args);
    process.stdout.write(JSON.stringify({ out: path.resolve(args.out), images: rec.images.map((i) => i.file), model: rec.model.id, random_weights: rec.random_weights }) + '\n');
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
