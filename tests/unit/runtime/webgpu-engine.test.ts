/**
 * The WebGPU engine switch (app/lib/runtime/webgpu-engine.ts): the auto rule on the adapter facts probed in real
 * browsers (../shared/notes/webgpu-here.md: SwiftShader is a fallback adapter without shader-f16; an H100 via Dawn is
 * not), the build files each engine loads (checked against onnxruntime-web's own dist and package exports), the
 * worker-name round trip, and a real session factory (onnxruntime-web's Node build) reporting the build it ran on.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import {
  chooseWebGpuEngine,
  engineLoadFailed,
  modelPlanFacts,
  NO_GPU,
  ORT_BUILDS,
  ortConfigFromWorkerName,
  ortWorkerName,
  parseWebGpuEngine,
  buildChanges,
  type GpuFacts,
  type OrtWorkerConfig,
} from '../../../app/lib/runtime';
import { createSessionFactory, type Ort, type OrtHost } from '../../../app/lib/runtime/sessions';
import { REPO_ROOT } from '../helpers/shared';

const SWIFTSHADER: GpuFacts = { available: true, vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true, shaderF16: false, maxBufferSize: 2 ** 30, maxStorageBufferBindingSize: 2 ** 30 };
const H100: GpuFacts = { available: true, vendor: 'nvidia', architecture: 'hopper', isFallbackAdapter: false, shaderF16: false, maxBufferSize: 2 ** 32, maxStorageBufferBindingSize: 2 ** 31 };
const cfg = (engine: OrtWorkerConfig['engine'], backend: OrtWorkerConfig['backend'] = 'auto'): OrtWorkerConfig => ({ engine, backend });
const ORT_DIST = path.join(REPO_ROOT, 'node_modules/onnxruntime-web/dist');

describe('chooseWebGpuEngine: the auto rule', () => {
  it('hardware adapter -> native WebGPU EP; software fallback or no adapter -> JSEP', () => {
    expect(chooseWebGpuEngine(cfg('auto'), H100).engine).toBe('native');
    expect(chooseWebGpuEngine(cfg('auto', 'webgpu'), H100).engine).toBe('native');
    expect(chooseWebGpuEngine(cfg('auto'), SWIFTSHADER).engine).toBe('jsep');
    expect(chooseWebGpuEngine(cfg('auto', 'webgpu'), SWIFTSHADER).engine).toBe('jsep');
    expect(chooseWebGpuEngine(cfg('auto'), { ...NO_GPU, unavailableReason: 'navigator.gpu is undefined' }).engine).toBe('jsep');
  });

  it('a forced engine is honoured wherever WebGPU may run, SwiftShader included', () => {
    expect(chooseWebGpuEngine(cfg('native'), SWIFTSHADER).engine).toBe('native');
    expect(chooseWebGpuEngine(cfg('jsep'), H100).engine).toBe('jsep');
    expect(chooseWebGpuEngine(cfg('native', 'webgpu'), SWIFTSHADER).reasons[0]).toMatch(/native WebGPU EP, chosen in settings/);
  });

  it('backend WASM or no adapter: the precached JSEP build, with the reason why the engine is moot', () => {
    const c = chooseWebGpuEngine(cfg('native', 'wasm'), H100);
    expect(c.engine).toBe('jsep');
    expect(c.reasons[0]).toMatch(/backend WASM/);
    const n = chooseWebGpuEngine(cfg('native'), NO_GPU);
    expect(n.engine).toBe('jsep');
    expect(n.reasons[0]).toMatch(/no WebGPU adapter.*native WebGPU EP was chosen/);
  });

  it('a native build that cannot load falls back to JSEP and keeps both reasons', () => {
    const c = engineLoadFailed(chooseWebGpuEngine(cfg('auto'), H100), new TypeError('Failed to fetch'));
    expect(c.engine).toBe('jsep');
    expect(c.build.module).toBe('ort.min.mjs');
    expect(c.reasons).toHaveLength(2);
    expect(c.reasons[1]).toMatch(/failed to load \(Failed to fetch\): using JSEP/);
  });
});

describe('the builds', () => {
  it('each engine names the module onnxruntime-web exports for it, and the glue + wasm that module loads', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'node_modules/onnxruntime-web/package.json'), 'utf8'));
    expect(pkg.exports['.'].import['onnxruntime-web-use-extern-wasm']).toBe(`./dist/${ORT_BUILDS.jsep.module}`);
    expect(pkg.exports['./webgpu'].import['onnxruntime-web-use-extern-wasm']).toBe(`./dist/${ORT_BUILDS.native.module}`);
    for (const b of Object.values(ORT_BUILDS)) {
      const js = fs.readFileSync(path.join(ORT_DIST, b.module), 'utf8');
      // The module refers to exactly its own glue; the glue's wasm sits beside it.
      expect(js.match(/ort-wasm-simd-threaded[\w.]*\.mjs/g)?.filter((x, i, a) => a.indexOf(x) === i)).toEqual([b.glue]);
      expect(fs.existsSync(path.join(ORT_DIST, b.wasm))).toBe(true);
    }
    // The native build carries ORT's C++ WebGPU EP (webgpuInit); the JSEP build its TypeScript kernels (jsepInit).
    expect(fs.readFileSync(path.join(ORT_DIST, ORT_BUILDS.native.glue), 'utf8')).toContain('webgpuInit');
    expect(fs.readFileSync(path.join(ORT_DIST, ORT_BUILDS.jsep.glue), 'utf8')).toContain('jsepInit');
  });
});

describe('worker config', () => {
  it('round-trips through the worker name; any other name reads as auto/auto', () => {
    for (const c of [cfg('native', 'webgpu'), cfg('jsep', 'wasm'), cfg('auto')]) {
      const name = ortWorkerName('classifier', c);
      expect(name.startsWith('classifier ')).toBe(true);
      expect(ortConfigFromWorkerName(name)).toEqual(c);
    }
    expect(ortConfigFromWorkerName('classifier')).toEqual(cfg('auto'));
    expect(ortConfigFromWorkerName(undefined)).toEqual(cfg('auto'));
    expect(ortConfigFromWorkerName('x [ort engine=cuda backend=auto]')).toEqual(cfg('auto'));
  });

  it('workers restart only when the build they would load changes on this adapter', () => {
    // SwiftShader, engine auto: WASM <-> WebGPU keeps the JSEP workers (the existing forced-WebGPU tests rely on it).
    expect(buildChanges(cfg('auto', 'wasm'), cfg('auto', 'webgpu'), SWIFTSHADER)).toBe(false);
    expect(buildChanges(cfg('auto', 'auto'), cfg('jsep', 'auto'), SWIFTSHADER)).toBe(false);
    expect(buildChanges(cfg('jsep'), cfg('native'), SWIFTSHADER)).toBe(true);
    // A hardware adapter: auto is native, so leaving WASM (JSEP) or choosing JSEP restarts.
    expect(buildChanges(cfg('auto', 'wasm'), cfg('auto', 'auto'), H100)).toBe(true);
    expect(buildChanges(cfg('auto'), cfg('jsep'), H100)).toBe(true);
    expect(buildChanges(cfg('auto', 'auto'), cfg('auto', 'webgpu'), H100)).toBe(false);
    expect(buildChanges(cfg('native'), cfg('jsep'), NO_GPU)).toBe(false);
  });

  it('stored settings: unknown values read as auto', () => {
    expect(parseWebGpuEngine('native')).toBe('native');
    expect(parseWebGpuEngine('jsep')).toBe('jsep');
    expect(parseWebGpuEngine('webgl')).toBe('auto');
    expect(parseWebGpuEngine(undefined)).toBe('auto');
  });
});

describe('session factory', () => {
  it('puts the build and its reason into the runtime report (real ORT, WASM)', async () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'public/models/manifest.json'), 'utf8'));
    const entry = manifest.models.find((m: ModelEntry) => m.id === 'tiny-vit-classifier') as ModelEntry;
    const choice = chooseWebGpuEngine(cfg('auto', 'wasm'), H100);
    const host: OrtHost = {
      ort: async () => ort as unknown as Ort,
      engine: async () => choice,
      planInputs: async (e, override) => ({ gpu: NO_GPU, crossOriginIsolated: false, hardwareConcurrency: 1, override, ...modelPlanFacts(e) }),
      numThreads: 1,
      reader: () => async (file) => new Uint8Array(fs.readFileSync(path.join(REPO_ROOT, 'public/models', file.path))),
    };
    const { sessions, report } = await createSessionFactory(host).create(entry, ['model'], 'wasm', { kind: 'app' } as never);
    try {
      expect(report.backend).toBe('wasm');
      expect(report.engine).toBe('jsep');
      expect(report.ortBuild).toBe(ORT_BUILDS.jsep.label);
      expect(report.reasons[0]).toBe(choice.reasons[0]);
    } finally {
      await sessions.model.release();
    }
  });
});
