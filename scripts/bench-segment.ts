/**
 * Benchmark (prints numbers, asserts nothing): SAM-family encoder ms per image and decoder ms per interaction on
 * WASM (onnxruntime-web's Node build, the same graphs and app/lib/sam code the browser worker runs).
 *
 *   npm run bench:segment -- [--models id,id] [--models-dir DIR] [--images N] [--decodes N] [--threads N]
 *
 * Images: the first N of ../shared/data/cxr-lung-masks/images (or $CXR_SHARED). Decodes: alternating one positive
 * click, click + negative click, and a box, as interactive use does; the first decode of each model is a warm-up.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { decodeImageFileNode } from '../app/platform/node/decode';
import { parseManifest } from '../app/lib/models/manifest';
import type { SamPrompt } from '../app/lib/sam/layouts';
import { openSamPipeline } from '../app/platform/node/engines';

const ROOT = path.resolve(import.meta.dirname, '..');
const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const modelsDir = path.resolve(opt('--models-dir', path.join(ROOT, 'public/models')));
const shared = process.env.CXR_SHARED ?? path.join(ROOT, '..', 'shared');
const nImages = Number(opt('--images', '3'));
const nDecodes = Number(opt('--decodes', '30'));
ort.env.wasm.numThreads = Number(opt('--threads', '1'));
ort.env.logLevel = 'error';

const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')));
const ids = opt('--models', manifest.models.filter((m) => m.family === 'sam').map((m) => m.id).join(',')).split(',');
const imgDir = path.join(shared, 'data/cxr-lung-masks/images');
const files = fs.readdirSync(imgDir).sort().slice(0, nImages);
const rasters = await Promise.all(files.map(async (f) => (await decodeImageFileNode(fs.readFileSync(path.join(imgDir, f)))).raster));

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const results = [];
for (const id of ids) {
  const entry = manifest.models.find((m) => m.id === id);
  if (!entry) continue;
  const pipe = await openSamPipeline(modelsDir, entry);
  const enc: number[] = [];
  const dec: number[] = [];
  const post: number[] = [];
  for (const r of rasters) {
    const t0 = performance.now();
    const emb = await pipe.encode(r);
    enc.push(performance.now() - t0);
    const { width: w, height: h } = r;
    const prompts: SamPrompt[] = [
      { points: [{ x: w * 0.3, y: h * 0.5, label: 1 }] },
      { points: [{ x: w * 0.3, y: h * 0.5, label: 1 }, { x: w * 0.7, y: h * 0.5, label: 0 }] },
      pipe.itf.supportsBox ? { points: [], box: [w * 0.1, h * 0.1, w * 0.48, h * 0.9] } : { points: [{ x: w * 0.25, y: h * 0.4, label: 1 }] },
    ];
    await pipe.decode(emb, prompts[0], { masks: 'best' }); // warm-up
    for (let i = 0; i < nDecodes; i++) {
      const t1 = performance.now();
      const d = await pipe.decode(emb, prompts[i % 3], { masks: 'best' });
      const total = performance.now() - t1;
      dec.push(total);
      post.push(total - d.decodeMs);
    }
  }
  const row = {
    model: id,
    layout: pipe.itf.layout,
    weights: entry.weights,
    image_size: pipe.settings.pre.size,
    encoder_ms_per_image: { median: +median(enc).toFixed(1), first: +enc[0].toFixed(1), n: enc.length },
    decoder_ms_per_interaction: { median: +median(dec).toFixed(2), mean: +(dec.reduce((a, b) => a + b, 0) / dec.length).toFixed(2), n: dec.length },
    of_which_upscale_threshold_ms: +median(post).toFixed(2),
  };
  console.log(JSON.stringify(row));
  results.push(row);
}
console.log(JSON.stringify({ backend: 'wasm', threads: ort.env.wasm.numThreads, images: files.length, image_sizes: rasters.map((r) => `${r.width}x${r.height}`), results }));
