/**
 * WASM ms of the int8 variants beside fp32 (prints a table; not a test): for the classifier (pneumonia-vit
 * model.onnx) and cxr-clip's image tower, fp32, the dynamic int8 graph (quantize_dynamic, made here into a temp folder
 * by `cxr-export quantize`'s dynamic path) and the shipped static QDQ int8 graph, each in a fresh Node process on
 * onnxruntime-web's WASM build (scripts/bench/wasm-child.ts, the same .wasm the browser runs), same seeded input.
 *
 *   npx tsx scripts/bench/int8-wasm.ts [--threads 2] [--warm 20] [--batch-iters 5]
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const PY = path.join(ROOT, '.venv/bin/python');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
}

function main() {
  const threads = arg('--threads', 2);
  const warm = arg('--warm', 20);
  const batchIters = arg('--batch-iters', 5);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-int8-wasm-'));
  const models = path.join(ROOT, 'public/models');
  const graphs: { model: string; variant: string; path: string }[] = [];
  for (const [model, stem] of [['pneumonia-vit', 'model'], ['cxr-clip', 'image_encoder']]) {
    const fp32 = path.join(models, model, `${stem}.onnx`);
    const dyn = path.join(work, `${model}.${stem}.dynamic-int8.onnx`);
    const py = `from pathlib import Path; from cxr_export.quantize import quantize_file; quantize_file(Path(${JSON.stringify(fp32)}), Path(${JSON.stringify(dyn)}), 'int8')`;
    const r = spawnSync(PY, ['-c', py], { cwd: path.join(ROOT, 'export-scripts'), encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`dynamic int8 of ${fp32} failed: ${r.stderr.slice(-400)}`);
    graphs.push({ model, variant: 'fp32', path: fp32 }, { model, variant: 'int8 dynamic', path: dyn }, { model, variant: 'int8 static QDQ (shipped)', path: path.join(models, model, `${stem}.int8.onnx`) });
  }
  // Seeded N(0,1) pixel_values at batch 1 and 8 (the feeds format of wasm-child.ts).
  const feeds: Record<string, Record<string, { file: string; dims: number[]; dtype: string }>> = {};
  let seed = 1;
  const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
  for (const b of [1, 8]) {
    const n = b * 3 * 224 * 224;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(rand() + 1e-12));
      const t = 2 * Math.PI * rand();
      x[i] = r * Math.cos(t);
      if (i + 1 < n) x[i + 1] = r * Math.sin(t);
    }
    const file = path.join(work, `pixel_values-b${b}.bin`);
    fs.writeFileSync(file, Buffer.from(x.buffer));
    feeds[String(b)] = { pixel_values: { file, dims: [b, 3, 224, 224], dtype: 'float32' } };
  }
  const rows: string[] = ['| graph | variant | MB | WASM batch 1 p50 / min (ms) | WASM batch 8 p50 / min (ms per image) |', '|---|---|---|---|---|'];
  for (const g of graphs) {
    const spec = JSON.stringify({ path: g.path, feeds, threads, warm, batchIters });
    const r = spawnSync('npx', ['tsx', path.join(ROOT, 'scripts/bench/wasm-child.ts'), spec], { cwd: ROOT, encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH '));
    if (!line) throw new Error(`${g.path}: no BENCH line (${r.stderr.slice(-400)})`);
    const res = JSON.parse(line.slice(6)) as Record<string, number>;
    const mb = (fs.statSync(g.path).size / 1e6).toFixed(1);
    rows.push(`| ${g.model} | ${g.variant} | ${mb} | ${res.warm_p50_ms.toFixed(1)} / ${res.warm_min_ms.toFixed(1)} | ${(res.batch8_p50_ms / 8).toFixed(1)} / ${(res.batch8_min_ms / 8).toFixed(1)} |`);
    process.stderr.write(`${g.model} ${g.variant}: ${JSON.stringify(res)}\n`);
  }
  process.stdout.write(`WASM (onnxruntime-web Node build), ${threads} threads, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'})\n${rows.join('\n')}\n`);
}

main();
