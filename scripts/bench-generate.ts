/**
 * Benchmark (prints numbers; not a test): ms per UNet step and per image for each text-to-image model, in Node
 * with onnxruntime-web's wasm backend — the same engine the gallery's worker runs on WASM.
 *
 *   npm run bench:generate -- [--models-dir public/models] [--model ID ...] [--entry manifest-entry.json ...]
 *                             [--steps 4] [--n 3] [--threads 2]
 *
 * Default: every 'sd' model of the manifest, plus tests/fixtures/sd15-sizes.json (SD 1.5 at 512 x 512 with its real
 * graph sizes): a model the size check refuses is printed with the check's numbers instead of timings.
 * The first image of each model is a warm-up (session creation, first-run kernels) and is reported separately.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseManifest } from '../app/lib/models/manifest';
import type { ModelEntry } from '../app/lib/models/manifest-types';
import { checkSdFit, chooseLayout, createSdEngine } from '../app/lib/sd';
import { nodeGenerateHost } from '../app/platform/node/engines';

const argv = process.argv.slice(2);
const opt = (k: string, d: string) => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : d;
};
const all = (k: string) => argv.flatMap((a, i) => (a === k ? [argv[i + 1]] : []));
const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const modelsDir = path.resolve(opt('--models-dir', path.join(repo, 'public/models')));
const steps = Number(opt('--steps', '4'));
const n = Number(opt('--n', '3'));
const threads = Number(opt('--threads', String(Math.min(2, os.cpus().length))));
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(modelsDir, 'manifest.json'), 'utf8')));
const wanted = all('--model');
const entries: ModelEntry[] = manifest.models.filter((m) => m.family === 'sd' && (!wanted.length || wanted.includes(m.id)));
const extra = all('--entry');
for (const f of extra.length ? extra : wanted.length ? [] : [path.join(repo, 'tests/fixtures/sd15-sizes.json')]) entries.push(JSON.parse(fs.readFileSync(f, 'utf8')));

const host = nodeGenerateHost(modelsDir, threads);
const noGpu = (await host.planInputs(entries[0] ?? ({ variants: {} } as ModelEntry), 'wasm')).gpu;
console.log(`# bench:generate — Node ${process.version}, onnxruntime-web wasm, ${threads} thread(s), ${os.cpus().length} CPUs (${os.cpus()[0]?.model}), load ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
for (const entry of entries) {
  const variant = entry.variants.fp32;
  if (!variant) {
    console.log(JSON.stringify({ model: entry.id, refused: 'no fp32 variant (WASM runs fp32)' }));
    continue;
  }
  const { layout, hasLora } = chooseLayout(entry, variant);
  const cfg = entry.config as { image_size?: number; guidance_scale?: number };
  const fit = checkSdFit({ entry, variant, layout, backend: 'wasm', gpu: noGpu, deviceMemoryGiB: host.deviceMemoryGiB, unetBatch: 1 });
  if (!fit.ok) {
    console.log(JSON.stringify({ model: entry.id, image_size: cfg.image_size, backend: 'wasm', refused: fit.message, weights_bytes: fit.weightsBytes, activation_bytes: fit.activationBytes }));
    continue;
  }
  const engine = createSdEngine(host);
  const req = { entry, override: 'wasm' as const, source: { kind: 'app' as const } };
  const t0 = performance.now();
  const loaded = await engine.load(req);
  if (!loaded.ok) {
    console.log(JSON.stringify({ model: entry.id, error: loaded.message }));
    continue;
  }
  const loadMs = performance.now() - t0;
  const rss0 = process.memoryUsage().rss;
  const sides = hasLora ? (['base', 'lora'] as const) : (['base'] as const);
  const stepMs: number[] = [];
  const imageMs: number[] = [];
  let warm: number | null = null;
  for (let i = 0; i <= n; i++) {
    const r = await engine.generate(req, { prompt: 'a chest X-ray showing pneumonia', steps, guidanceScale: cfg.guidance_scale ?? 1, seed: i, sides: [...sides] });
    if (!r.ok) throw new Error(r.message);
    for (const im of r.value.images) {
      if (i === 0 && warm === null) {
        warm = im.totalMs;
        continue;
      }
      stepMs.push(...im.stepMs);
      imageMs.push(im.totalMs);
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
  console.log(JSON.stringify({
    model: entry.id, weights: entry.weights, image_size: cfg.image_size, layout, backend: 'wasm', threads, steps,
    session_create_ms: Math.round(loadMs), warmup_image_ms: Math.round(warm ?? 0),
    unet_step_ms_median: Math.round(med(stepMs) * 10) / 10, image_ms_median: Math.round(med(imageMs)), images: imageMs.length,
    rss_mb: Math.round(process.memoryUsage().rss / 2 ** 20), rss_after_load_mb: Math.round(rss0 / 2 ** 20), fit: fit.message,
  }));
  await engine.reset();
}
