import fs from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { REPO, needs } from './helpers';

/** Checks on the production build itself (dist/): one onnxruntime-web, served by the app, no CDN anywhere. */
const DIST = path.join(REPO, 'dist');

/** The codec packages' wasm (name without Vite's content hash): libjpeg-turbo 8-bit, CharLS, OpenJPEG, OpenJPH, dcmjs-codecs. */
const CODEC_WASM = ['charlswasm_decode.wasm', 'dcmjs-native-codecs.wasm', 'libjpegturbowasm_decode.wasm', 'openjpegwasm_decode.wasm', 'openjphjs.wasm'].sort();

function files(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

test('dist holds exactly one onnxruntime-web, self-hosted, and no CDN URL', () => {
  needs(fs.existsSync(DIST), `${DIST} (run \`npx vite build\` first)`);
  const all = files(DIST).filter((f) => !f.includes(`${path.sep}models${path.sep}`));
  const code = all.filter((f) => /\.(m?js|html|webmanifest)$/.test(f));
  for (const f of code) {
    const text = fs.readFileSync(f, 'utf8');
    expect(text, `${path.relative(DIST, f)} mentions a CDN`).not.toMatch(/cdn\.jsdelivr|jsdelivr\.net|unpkg\.com|cdnjs/);
  }
  // ORT's runtime ships once per WebGPU engine (app/lib/runtime/webgpu-engine.ts), each build whole in ort/: JSEP
  // (ort.min.mjs + its glue and wasm) and the native WebGPU EP (ort.webgpu.min.mjs + its Asyncify glue and wasm); a
  // worker imports one of them. The only other wasm files are the DICOM codec packages' own (imported with ?url in
  // app/platform/browser/decode.ts), each once.
  const wasm = all.filter((f) => f.endsWith('.wasm')).map((f) => path.relative(DIST, f));
  const ortWasm = wasm.filter((f) => f.startsWith(`ort${path.sep}`)).sort();
  expect(ortWasm).toEqual([path.join('ort', 'ort-wasm-simd-threaded.asyncify.wasm'), path.join('ort', 'ort-wasm-simd-threaded.jsep.wasm')]);
  const codecWasm = wasm.filter((f) => !f.startsWith(`ort${path.sep}`)).map((f) => path.basename(f).replace(/-[\w-]{8}\.wasm$/, '.wasm')).sort();
  expect(codecWasm).toEqual(CODEC_WASM);
  // Any bundled copy of ORT would carry its calls into the wasm (`_OrtCreateSession`); only ORT's own files in ort/
  // may. (The glue's file name is no test: the worker names the build it imports, webgpu-engine.ts.)
  const withOrtCore = code.filter((f) => fs.readFileSync(f, 'utf8').includes('_OrtCreateSession'));
  const ortCore = ['ort.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.asyncify.mjs'];
  expect(withOrtCore.map((f) => path.relative(DIST, f)).sort()).toEqual(ortCore.map((f) => path.join('ort', f)).sort());
  // Precached for offline use, models excluded; the native EP's 27 MB wasm only when a worker first uses it.
  const sw = fs.readFileSync(path.join(DIST, 'sw.js'), 'utf8');
  expect(sw).toContain('"ort/ort-wasm-simd-threaded.jsep.wasm"');
  expect(sw).not.toContain('"ort/ort-wasm-simd-threaded.asyncify.wasm"');
  expect(sw).toContain('/ort/ort-wasm-simd-threaded.asyncify.wasm');
  // Codec wasm is fetched lazily, but precached so that a DICOM opens offline after the first visit.
  for (const f of wasm.filter((w) => !w.startsWith(`ort${path.sep}`))) expect(sw, `${f} precached`).toContain(f.split(path.sep).join('/'));
  expect(sw).not.toMatch(/"models\/[^"]+\.onnx"/);
});
