/**
 * Text-to-image in Node with the app's own TypeScript LCM pipeline (app/lib/generate, onnxruntime-web's wasm
 * backend): the same seed gives the same image as the gallery (and as diffusers with
 * torch.Generator("cpu").manual_seed(seed)).
 *
 *   npm run generate -- --model ID --prompt "..." --seed S --steps N [--n K] [--side base|lora|both]
 *                       [--guidance G] [--negative "..."] [--out DIR] [--models-dir public/models] [--threads T]
 *
 * Writes DIR/<model>_s<seed>_<side>.png for seeds S..S+K-1, DIR/grid.png (rows = seeds, columns = sides) and
 * DIR/generation.json (prompt, seeds, steps, guidance, model id and file sha256s, per-image sha256 and timings).
 * Default model: cxr-ldm-lcm when public/models has it, else the first SD model (see defaultGeneratorId).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { nodeOrtHost } from '../platform/node/ort';
import { findModel, parseManifest } from '../lib/models/manifest';
import type { ModelEntry } from '../lib/models/manifest-types';
import { sha256Hex } from '../lib/models/hashing';
import { createGenerateEngine, type GenerateHost } from '../lib/generate/engine';
import { composeGrid, defaultGeneratorId, generationRecord, type RecordImage } from '../lib/generate/record';
import type { Side } from '../lib/generate/pipeline';

const HELP = `usage: npm run generate -- --model ID --prompt "..." --seed S --steps N [--n K] [--side base|lora|both]
       [--guidance G] [--negative "..."] [--out DIR] [--models-dir public/models] [--threads T]`;

export interface GenerateArgs {
  model?: string;
  prompt: string;
  negative: string;
  seed: number;
  steps: number;
  n: number;
  side: 'base' | 'lora' | 'both';
  guidance?: number;
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
      case '--out': a.out = v(); break;
      case '--models-dir': a.modelsDir = path.resolve(v()); break;
      case '--threads': a.threads = int('--threads', 1, 64); break;
      case '-h': case '--help': throw new Error(HELP);
      default: throw new Error(`unknown argument ${k}\n${HELP}`);
    }
  }
  return a;
}

/** A GenerateHost over a models folder on disk (Node: wasm, no GPU; files read from modelsDir). */
export function nodeGenerateHost(modelsDir: string, threads: number): GenerateHost {
  return {
    ...nodeOrtHost({ modelsDir, threads }),
    deviceMemoryGiB: Math.floor(os.totalmem() / 1024 ** 3),
    yieldToEventLoop: () => new Promise((resolve) => setTimeout(resolve, 0)),
  };
}

function encodePng(width: number, height: number, rgba: Uint8ClampedArray): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, rgba.byteLength);
  return PNG.sync.write(png);
}

export async function runGenerate(a: GenerateArgs, log: (s: string) => void = (s) => process.stderr.write(s + '\n')) {
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(a.modelsDir, 'manifest.json'), 'utf8')));
  const id = a.model ?? defaultGeneratorId(manifest);
  const entry: ModelEntry | undefined = id ? findModel(manifest, id) : undefined;
  if (!entry) throw new Error(`no model '${id}' in ${a.modelsDir}/manifest.json (SD models: ${manifest.models.filter((m) => m.family === 'sd').map((m) => m.id).join(', ') || 'none'})`);
  if (entry.family !== 'sd') throw new Error(`${entry.id} is a ${entry.family} model, not a text-to-image (sd) model`);
  const engine = createGenerateEngine(nodeGenerateHost(a.modelsDir, a.threads));
  const req = { entry, override: 'wasm' as const, source: { kind: 'app' as const } };
  const loaded = await engine.load(req, log);
  if (!loaded.ok) throw new Error(loaded.message);
  const rep = loaded.value;
  const sides: Side[] = a.side === 'both' ? (rep.hasLora ? ['base', 'lora'] : ['base']) : [a.side];
  if (a.side === 'lora' && !rep.hasLora) throw new Error(`${entry.id} has no LoRA UNet`);
  if (a.side === 'both' && !rep.hasLora) log(`${entry.id} has no LoRA UNet: base only`);
  const guidance = a.guidance ?? Number((entry.config as { guidance_scale?: number })?.guidance_scale ?? 1);
  fs.mkdirSync(a.out, { recursive: true });
  const images: RecordImage[] = [];
  const grid: { width: number; height: number; data: Uint8ClampedArray }[][] = [];
  const seeds = Array.from({ length: a.n }, (_, i) => a.seed + i);
  const random = entry.weights === 'random-fixture';
  if (random) log(`${entry.id}: RANDOM WEIGHTS (test fixture) — these images mean nothing`);
  for (const seed of seeds) {
    const r = await engine.generate(req, { prompt: a.prompt, negativePrompt: a.negative, steps: a.steps, guidanceScale: guidance, seed, sides }, (e) => {
      if (e.kind === 'step') log(`seed ${seed} ${e.side}: step ${e.step}/${e.total} ${e.ms.toFixed(0)} ms`);
    });
    if (!r.ok) throw new Error(r.message);
    const row = [];
    for (const im of r.value.images) {
      const file = `${entry.id}_s${seed}_${im.side}.png`;
      const png = encodePng(im.width, im.height, im.rgba);
      fs.writeFileSync(path.join(a.out, file), png);
      images.push({ side: im.side, seed, file, width: im.width, height: im.height, sha256: await sha256Hex(new Uint8Array(png)), timesteps: im.timesteps, stepMs: im.stepMs.map((x) => Math.round(x * 10) / 10), totalMs: Math.round(im.totalMs) });
      row.push({ width: im.width, height: im.height, data: im.rgba });
    }
    grid.push(row);
  }
  const g = composeGrid(grid, 4, Math.max(1, Math.floor(256 / Math.max(...images.map((i) => i.width)))));
  fs.writeFileSync(path.join(a.out, 'grid.png'), encodePng(g.width, g.height, g.data));
  const record = generationRecord({ entry, dtype: rep.dtype, layout: rep.layout, backend: rep.backend, prompt: a.prompt, negativePrompt: a.negative, seeds, steps: a.steps, guidanceScale: guidance, sides, images });
  fs.writeFileSync(path.join(a.out, 'generation.json'), JSON.stringify(record, null, 1) + '\n');
  await engine.reset();
  return record;
}

const isMain = process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (isMain) {
  try {
    const rec = await runGenerate(parseGenerateArgs(process.argv.slice(2)));
    process.stdout.write(JSON.stringify({ out: path.resolve(parseGenerateArgs(process.argv.slice(2)).out), images: rec.images.map((i) => i.file), model: rec.model.id, random_weights: rec.random_weights }) + '\n');
  } catch (e) {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
