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
  // ORT's runtime ships once: its JS API in ort/ort.min.mjs and one JSEP glue + wasm pair beside it. The only other
  // wasm files are the DICOM codec packages' own (imported with ?url in app/platform/browser/decode.ts), each once.
  const wasm = all.filter((f) => f.endsWith('.wasm')).map((f) => path.relative(DIST, f));
  const ortWasm = wasm.filter((f) => f.startsWith(`ort${path.sep}`));
  expect(ortWasm).toEqual([path.join('ort', 'ort-wasm-simd-threaded.jsep.wasm')]);
  const codecWasm = wasm.filter((f) => !f.startsWith(`ort${path.sep}`)).map((f) => path.basename(f).replace(/-[\w-]{8}\.wasm$/, '.wasm')).sort();
  expect(codecWasm).toEqual(CODEC_WASM);
  // Any bundled copy of ORT would carry the name of its wasm glue; only ORT's own two files may (sw.js lists them
  // for precaching).
  const withOrtCore = code.filter((f) => path.basename(f) !== 'sw.js' && fs.readFileSync(f, 'utf8').includes('ort-wasm-simd-threaded'));
  expect(withOrtCore.map((f) => path.relative(DIST, f)).sort()).toEqual([path.join('ort', 'ort-wasm-simd-threaded.jsep.mjs'), path.join('ort', 'ort.min.mjs')].sort());
  // Precached for offline use, models excluded.
  const sw = fs.readFileSync(path.join(DIST, 'sw.js'), 'utf8');
  expect(sw).toContain('ort/ort-wasm-simd-threaded.jsep.wasm');
  // Codec wasm is fetched lazily, but precached so that a DICOM opens offline after the first visit.
  for (const f of wasm.filter((w) => !w.startsWith(`ort${path.sep}`))) expect(sw, `${f} precached`).toContain(f.split(path.sep).join('/'));
  expect(sw).not.toMatch(/"models\/[^"]+\.onnx"/);
});
