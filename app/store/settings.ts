/**
 * User settings persisted in localStorage: read synchronously at start-up, so the first model load already uses the
 * chosen backend (idb-keyval would make the first render wait).
 */
import type { BackendOverride } from '../lib/runtime';

export type ModelSourceSetting =
  | { kind: 'app' }
  /** A Hugging Face-style repo: files at `${repoUrl}/resolve/${revision}/<path>`. */
  | { kind: 'hf'; repoUrl: string; revision?: string }
  /** A local folder the user picked; its files are imported into the model cache (the blobs live only this visit). */
  | { kind: 'local'; name: string };

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
