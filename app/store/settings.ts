/**
 * User settings persisted in localStorage: read synchronously at start-up, so the first model load already uses the
 * chosen backend (idb-keyval would make the first render wait).
 */
import type { BackendOverride } from '../lib/runtime';
import type { ModelSourceSetting } from '../lib/models/sources';
import { guarded } from './alerts';
import type { SliceCreator } from './state';

export type { ModelSourceSetting };

export interface Settings {
  backend: BackendOverride;
  modelSource: ModelSourceSetting;
}

const KEY = 'cxr-studio.settings.v1';
export const DEFAULT_SETTINGS: Settings = { backend: 'auto', modelSource: { kind: 'app' } };

export function loadSettings(): Settings {
  try {
    const raw = globalThis.localStorage?.getItem(KEY);
    if (!raw) return { ...DEFAULT_SETTINGS };
    const s = JSON.parse(raw) as Partial<Settings>;
    const backend = s.backend === 'webgpu' || s.backend === 'wasm' ? s.backend : 'auto';
    const modelSource = s.modelSource && ['app', 'hf', 'local'].includes(s.modelSource.kind) ? s.modelSource : { kind: 'app' as const };
    return { backend, modelSource };
  } catch {
    return { ...DEFAULT_SETTINGS };
  }
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
}

export const createSettingsSlice: SliceCreator<SettingsSlice> = (set, get) => ({
  settings: loadSettings(),

  setBackend: guarded(get, 'Changing the backend failed', async (backend: BackendOverride) => {
    const settings = { ...get().settings, backend };
    saveSettings(settings);
    // Sessions are bound to their execution provider: drop them; the next use re-creates them with the new setting.
    set({ settings });
    await get().releaseSessions();
    if (get().classifierId && get().images.length) await get().ensureClassifierLoaded();
  }),
});
