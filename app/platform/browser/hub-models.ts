/**
 * The Hub models the user added and the Hub base URL, kept in localStorage (a few KB of JSON: file lists with their
 * pinned sha256, never weights). Read synchronously at start-up so a reload, online or offline, lists them again.
 */
import type { HubModelEntry } from '../../lib/hub/entry';
import { DEFAULT_HUB_BASE } from '../../lib/hub/ref';

const MODELS_KEY = 'cxr-hub-models';
const BASE_KEY = 'cxr-hub-base';

export function loadHubModels(): HubModelEntry[] {
  try {
    const v = JSON.parse(globalThis.localStorage?.getItem(MODELS_KEY) ?? '[]');
    return Array.isArray(v) ? v.filter((e) => e && typeof e === 'object' && e.hub && e.variants) : [];
  } catch {
    return [];
  }
}

export function saveHubModels(models: HubModelEntry[]): void {
  try {
    globalThis.localStorage?.setItem(MODELS_KEY, JSON.stringify(models));
  } catch {
    /* storage full or blocked: the list lives for this visit */
  }
}

export function loadHubBase(): string {
  return globalThis.localStorage?.getItem(BASE_KEY) || DEFAULT_HUB_BASE;
}

export function saveHubBase(base: string): void {
  try {
    globalThis.localStorage?.setItem(BASE_KEY, base);
  } catch {
    /* see saveHubModels */
  }
}
