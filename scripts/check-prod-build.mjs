#!/usr/bin/env node
/**
 * A production build must not expose the app's store (it holds DICOM patient fields) or any test hook to the page:
 * no `cxrStudio` global in any script of the build. Usage: node scripts/check-prod-build.mjs [DIST=dist]
 * (the browser tests run against `vite build --mode test`, which has the hook; tests/run-all.sh builds both).
 *
 * It also checks that each worker gets exactly one ONNX Runtime: the self-hosted builds in ort/, JSEP (ort.min.mjs) or
 * the native WebGPU EP (ort.webgpu.min.mjs), each with its one wasm (vite.config.ts). Nothing else may carry ORT's JS (onnxruntime-common's backend registry, found by the message only
 * it has), and no other ORT wasm may be emitted: @huggingface/transformers' browser build imports its own
 * onnxruntime-web, which vite.config.ts aliases to the app's instance (app/platform/browser/ort-global.ts).
 */
import fs from 'node:fs';
import path from 'node:path';

const dist = path.resolve(process.argv[2] ?? 'dist');
if (!fs.existsSync(path.join(dist, 'index.html'))) {
  console.error(`check-prod-build: ${dist} has no index.html (build it first)`);
  process.exit(2);
}
const files = (d) => fs.readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(d, e.name)) : [path.join(d, e.name)]));
const code = files(dist).filter((f) => /\.(m?js|html)$/.test(f) && !f.includes(`${path.sep}models${path.sep}`));
const bad = code.filter((f) => fs.readFileSync(f, 'utf8').includes('cxrStudio'));
if (bad.length) {
  console.error(`check-prod-build: the production build exposes the store (cxrStudio) in ${bad.map((f) => path.relative(dist, f)).join(', ')}`);
  process.exit(1);
}

// One ORT per worker. ORT's JS (its backend registry's error text, in no other library this app bundles) only in the
// two self-hosted builds of ort/, one per WebGPU engine (app/lib/runtime/webgpu-engine.ts; a worker imports exactly
// one): JSEP (ort.min.mjs) and the native WebGPU EP (ort.webgpu.min.mjs), each with its one wasm; no CDN URL anywhere;
// the native EP's 27 MB wasm is cached on demand by the service worker, never precached.
const ORT_MARKER = 'no available backend found';
const ORT_JS = ['ort/ort.min.mjs', 'ort/ort.webgpu.min.mjs'];
const ORT_WASM = ['ort/ort-wasm-simd-threaded.asyncify.wasm', 'ort/ort-wasm-simd-threaded.jsep.wasm'];
const ortJs = code.filter((f) => fs.readFileSync(f, 'utf8').includes(ORT_MARKER)).map((f) => path.relative(dist, f).split(path.sep).join('/')).sort();
const ortWasm = files(dist).filter((f) => /ort-wasm[^/\\]*\.wasm$/.test(f)).map((f) => path.relative(dist, f).split(path.sep).join('/')).sort();
const problems = [];
if (ortJs.join() !== ORT_JS.join() || ortWasm.join() !== ORT_WASM.join()) {
  problems.push(`expected ORT's JS only in [${ORT_JS.join(', ')}] and ORT wasm [${ORT_WASM.join(', ')}]; found ORT code in [${ortJs.join(', ')}] and ORT wasm [${ortWasm.join(', ')}]`);
}
for (const f of code) {
  if (/cdn\.jsdelivr|jsdelivr\.net|unpkg\.com|cdnjs/.test(fs.readFileSync(f, 'utf8'))) problems.push(`${path.relative(dist, f)} mentions a CDN`);
}
const sw = fs.existsSync(path.join(dist, 'sw.js')) ? fs.readFileSync(path.join(dist, 'sw.js'), 'utf8') : '';
if (sw.includes('"ort/ort-wasm-simd-threaded.asyncify.wasm"')) problems.push('sw.js precaches the native WebGPU EP wasm (27 MB): it is cached on demand');
if (problems.length) {
  console.error(`check-prod-build: ${problems.join('; ')}`);
  process.exit(1);
}
const tjs = code.filter((f) => /transformers/.test(path.basename(f))).map((f) => `${path.relative(dist, f)} (${fs.statSync(f).size} bytes)`);
console.log(`check-prod-build: ${code.length} scripts in ${path.relative(process.cwd(), dist) || '.'}, no test hook; one ONNX Runtime per worker (${ortJs.join(' or ')}), no CDN; transformers.js: ${tjs.join(', ') || 'none'}`);
