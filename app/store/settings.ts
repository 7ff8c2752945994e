/**
 * User settings persisted in localStorage: read synchronously at start-up, so the first model load already uses the
 * chosen backend (idb-keyval would make the first render wait).
 */
import type { BackendOverride, OrtWorkerConfig, WebGpuEngineSetting } from '../lib/runtime';
import { parseWebGpuEngine } from '../lib/runtime/webgpu-engine';
import type { ModelSourceSetting } from '../lib/models/sources';
import type { DtypeChoice } from '../lib/models/dtype-choice';
import { guarded } from './alerts';
import { chosenModel } from './selectors';
import type { SliceCreator } from './state';

export type { ModelSourceSetting };

/** Per model: let the plan choose the variant ('auto', e.g. int8 on WASM when its card matches fp32) or force one. */
export type { DtypeChoice };

export interface Settings {
  backend: BackendOverride;
  /** Which onnxruntime-web WebGPU engine: JSEP, the native WebGPU EP, or 'auto' (lib/runtime/webgpu-engine.ts). */
  webgpuEngine: WebGpuEngineSetting;
  modelSource: ModelSourceSetting;
  /** Dtype choice by model id (absent: 'auto'). */
  dtypes: Record<string, DtypeChoice>;
}

const KEY = 'cxr-studio.settings.v1';
export const DEFAULT_SETTINGS: Settings = { backend: 'auto', webgpuEngine: 'auto', modelSource: { kind: 'app' }, dtypes: {} };
const DTYPE_CHOICES: DtypeChoice[] = ['auto', 'fp32', 'fp16', 'int8'];

export function loadSettings(): Settings {
  try {
    const raw = globalThis.localStorage?.getItem(KEY);
    if (!raw) return { ...DEFAULT_SETTINGS };
    const s = JSON.parse(raw) as Partial<Settings>;
    const backend = s.backend === 'webgpu' || s.backend === 'wasm' ? s.backend : 'auto';
    const modelSource = s.modelSource && ['app', 'hf', 'local'].includes(s.modelSource.kind) ? s.modelSource : { kind: 'app' as const };
    const dtypes: Record<string, DtypeChoice> = {};
    for (const [k, v] of Object.entries(s.dtypes ?? {})) if (DTYPE_CHOICES.includes(v)) dtypes[k] = v;
    return { backend, webgpuEngine: parseWebGpuEngine(s.webgpuEngine), modelSource, dtypes };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
}

/** The ORT config model workers start with (app/platform/browser/workers.ts). */
export function ortWorkerConfig(s: Pick<Settings, 'backend' | 'webgpuEngine'>): OrtWorkerConfig {
  return { engine: s.webgpuEngine, backend: s.backend };
}

export function saveSettings(s: Settings): void {
  try {
    globalThis.localStorage?.setItem(KEY, JSON.stringify(s));
  } catch {
    /* private mode / quota: the setting still applies for this visit */
  }
}

export interface SettingsSlice {
  settings: Settings;
  /** Force WASM or WebGPU, or let the app decide; sessions are re-created with the new setting. */
  setBackend(b: BackendOverride): Promise<void>;
  /**
   * Choose the WebGPU engine (JSEP, native WebGPU EP, auto). Each model worker loads one ORT build for its lifetime,
   * so sessions are released and the model workers restarted with the new build.
   */
  setWebgpuEngine(e: WebGpuEngineSetting): Promise<void>;
  /** Choose a model's dtype (Models view); its sessions are re-created with the new variant. */
  setModelDtype(modelId: string, d: DtypeChoice): Promise<void>;
}

export const createSettingsSlice: SliceCreator<SettingsSlice> = (set, get) => ({
  settings: loadSettings(),

  setBackend: guarded(get, 'Changing the backend failed', async (backend: BackendOverride) => {
    const settings = { ...get().settings, backend };
    saveSettings(settings);
    // Sessions are bound to their execution provider: drop them; the next use re-creates them with the new setting.
    set({ settings });
    await get().releaseSessions();
    // WASM needs no WebGPU engine: a worker on the native build goes back to the precached JSEP build, and back
    // (restarted only when the build changes: never on SwiftShader with engine 'auto').
    await get().workers.configureOrt(ortWorkerConfig(settings));
    if (chosenModel(get(), 'classifier') && get().images.length) await get().ensureClassifierLoaded();
  }),

  setWebgpuEngine: guarded(get, 'Changing the WebGPU engine failed', async (webgpuEngine: WebGpuEngineSetting) => {
    const settings = { ...get().settings, webgpuEngine };
    saveSettings(settings);
    set({ settings });
    await get().releaseSessions();
    await get().workers.configureOrt(ortWorkerConfig(settings));
    if (chosenModel(get(), 'classifier') && get().images.length) await get().ensureClassifierLoaded();
  }),

  setModelDtype: guarded(get, 'Changing the model variant failed', async (modelId: string, d: DtypeChoice) => {
    const dtypes = { ...get().settings.dtypes };
    if (d === 'auto') delete dtypes[modelId];
    else dtypes[modelId] = d;
    const settings = { ...get().settings, dtypes };
    saveSettings(settings);
    set({ settings });
    await get().releaseSessions();
    if (chosenModel(get(), 'classifier')?.id === modelId && get().currentId) await get().classifyCurrent();
  }),
});
