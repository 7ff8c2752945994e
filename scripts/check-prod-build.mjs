#!/usr/bin/env node
/**
 * A production build must not expose the app's store (it holds DICOM patient fields) or any test hook to the page:
 * no `cxrStudio` global in any script of the build. Usage: node scripts/check-prod-build.mjs [DIST=dist]
 * (the browser tests run against `vite build --mode test`, which has the hook; tests/run-all.sh builds both).
 *
 * It also checks that the build holds exactly one ONNX Runtime: the self-hosted ort/ort.min.mjs and its one wasm
 * (vite.config.ts). Nothing else may carry ORT's JS (onnxruntime-common's backend registry, found by the message only
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

// One ORT: its backend registry's error text is in ORT's JS (and in no other library this app bundles).
const ORT_MARKER = 'no available backend found';
const ortJs = code.filter((f) => fs.readFileSync(f, 'utf8').includes(ORT_MARKER)).map((f) => path.relative(dist, f).split(path.sep).join('/'));
const ortWasm = files(dist).filter((f) => /ort-wasm[^/\\]*\.wasm$/.test(f)).map((f) => path.relative(dist, f).split(path.sep).join('/'));
if (ortJs.length !== 1 || ortJs[0] !== 'ort/ort.min.mjs' || ortWasm.length !== 1 || !ortWasm[0].startsWith('ort/')) {
  console.error(`check-prod-build: expected exactly one ONNX Runtime (ort/ort.min.mjs and one ort/*.wasm); found ORT code in [${ortJs.join(', ')}] and ORT wasm [${ortWasm.join(', ')}]`);
  process.exit(1);
}
const tjs = code.filter((f) => /transformers/.test(path.basename(f))).map((f) => `${path.relative(dist, f)} (${fs.statSync(f).size} bytes)`);
console.log(`check-prod-build: ${code.length} scripts in ${path.relative(process.cwd(), dist) || '.'}, no test hook; one ONNX Runtime (${ortJs[0]}, ${ortWasm[0]}); transformers.js: ${tjs.join(', ') || 'none'}`);
