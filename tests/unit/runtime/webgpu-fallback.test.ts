/**
 * Issue 8 item 6: a WebGPU -> WASM fallback must not choose a dtype whose files were never downloaded. Real ORT
 * (onnxruntime-web's Node build has no WebGPU backend, so the WebGPU session really fails and the real fallback
 * runs); the "device" claims a WebGPU adapter with shader-f16 so the plan starts on WebGPU with fp16, and the reader
 * serves only the variants present in a temp folder (what the model cache would hold).
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import type { Dtype, ModelEntry } from '../../../app/lib/models/manifest-types';
import { createSessionFactory, type Ort, type OrtHost } from '../../../app/lib/runtime/sessions';
import { fallbackToWasm, modelPlanFacts, NoUsableVariantError, planExecution } from '../../../app/lib/runtime';
import { REPO_ROOT } from '../helpers/shared';

const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'public/models/manifest.json'), 'utf8'));
const tiny = manifest.models.find((m: ModelEntry) => m.id === 'tiny-vit-classifier') as ModelEntry;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fallback-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The tiny classifier offered as fp16, fp32 and int8 (one file each; the same graph, which is all ORT needs here). */
function entryWith(downloaded: Dtype[]): ModelEntry {
  const src = tiny.variants.fp32!.files.find((f) => f.path.endsWith('.onnx'))!;
  const bytes = fs.readFileSync(path.join(REPO_ROOT, 'public/models', src.path));
  const variants: ModelEntry['variants'] = {};
  for (const d of ['fp16', 'fp32', 'int8'] as Dtype[]) {
    const p = `${downloaded.join('-')}/model.${d}.onnx`;
    if (downloaded.includes(d)) {
      fs.mkdirSync(path.join(dir, path.dirname(p)), { recursive: true });
      fs.writeFileSync(path.join(dir, p), bytes);
    }
    variants[d] = { ...tiny.variants.fp32!, files: [{ ...src, path: p }] };
  }
  return { ...tiny, variants };
}

const host: OrtHost = {
  ort: async () => ort as unknown as Ort,
  planInputs: async (entry, override) => ({
    gpu: { available: true, shaderF16: true, vendor: 'test', maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 30 },
    crossOriginIsolated: true,
    hardwareConcurrency: 1,
    override,
    ...modelPlanFacts(entry),
  }),
  numThreads: 1,
  reader: () => async (file) => {
    const p = path.join(dir, file.path);
    if (!fs.existsSync(p)) throw new Error(`${file.path} is not in the model cache (download the model first)`);
    return new Uint8Array(fs.readFileSync(p));
  },
  downloadedDtypes: async (entry) => (Object.keys(entry.variants) as Dtype[]).filter((d) => fs.existsSync(path.join(dir, entry.variants[d]!.files[0].path))),
};
const source = { kind: 'url' as const, baseUrl: 'http://x/models/' };

describe('WebGPU -> WASM fallback uses downloaded files only', () => {
  it('fp16 planned for WebGPU, only fp16 and int8 downloaded: falls back to int8 (not the never-downloaded fp32)', async () => {
    const entry = entryWith(['fp16', 'int8']);
    expect(planExecution(await host.planInputs(entry, 'auto'))).toMatchObject({ backend: 'webgpu', dtype: 'fp16' });
    const { sessions, report } = await createSessionFactory(host).create(entry, ['model'], 'auto', source as never);
    expect(report).toMatchObject({ backend: 'wasm', dtype: 'int8', fellBack: true });
    expect(report.reasons.join(' ')).toMatch(/WebGPU session creation failed .*backend not found/);
    expect(report.reasons.join(' ')).toContain('int8 variant for WASM (already downloaded');
    await Promise.all(Object.values(sessions).map((s) => s.release()));
  });

  it('only fp16 downloaded: a clear error naming what to download, no attempt to read absent files', async () => {
    const entry = entryWith(['fp16']);
    await expect(createSessionFactory(host).create(entry, ['model'], 'auto', source as never)).rejects.toThrow(/the fp32 or int8 variant that WASM needs is not downloaded/);
  });

  it('fallbackToWasm keeps a WASM-capable planned dtype and refuses an undownloaded one', () => {
    const inp = { gpu: { available: true, shaderF16: false, maxBufferSize: 1, maxStorageBufferBindingSize: 1 }, crossOriginIsolated: true, hardwareConcurrency: 2, override: 'auto' as const, largestFileBytes: 1, availableDtypes: ['fp32', 'int8', 'fp16'] as Dtype[] };
    const plan = { backend: 'webgpu' as const, dtype: 'int8' as Dtype, numThreads: 2, reasons: [] };
    expect(fallbackToWasm(plan, new Error('x'), inp, ['int8']).dtype).toBe('int8');
    expect(fallbackToWasm({ ...plan, dtype: 'fp16' }, new Error('x'), inp, ['fp16', 'fp32']).dtype).toBe('fp32');
    expect(() => fallbackToWasm({ ...plan, dtype: 'fp16' }, new Error('x'), inp, ['fp16'])).toThrow(NoUsableVariantError);
  });
});
