/**
 * Models added from the Hub (issue 20): the list (persisted), the Hub base URL, and adding / removing one. An added
 * model joins the manifest's list under its family (mergeHubModels), so the Models view, downloads, Verify, delete and
 * the family's view run it like a built-in; its files come from its own repo (lib/hub/source.ts entrySource).
 */
import type { Manifest } from '../lib/models/manifest-types';
import type { HubModelEntry } from '../lib/hub/entry';
import { normalizeHubBase } from '../lib/hub/ref';
import { errorMessage } from '../lib/runtime/outcome';
import { loadHubBase, loadHubModels, saveHubBase, saveHubModels } from '../platform/browser/hub-models';
import { resolveHubFolder, resolveHubModel } from '../services/hub';
import { ModelDownloader } from '../lib/models/downloader';
import { variantFiles } from '../lib/models/manifest';
import { localSourceFromFiles } from '../lib/models/sources';
import { entrySource } from '../lib/hub/source';
import { browserModelStore } from '../platform/browser/model-cache';
import type { SliceCreator } from './state';

export interface HubAddState {
  spec: string;
  status: 'checking' | 'added' | 'error';
  message?: string;
}

export interface HubSlice {
  hubModels: HubModelEntry[];
  /** Base URL that bare ids ('hf:owner/name') are read from. */
  hubBase: string;
  hubAdd: HubAddState | null;
  setHubBase(base: string): void;
  /** Read the repo's config and file list, add it (replacing one of the same id) and choose it for its family. */
  addHubModel(spec: string): Promise<HubModelEntry | null>;
  /**
   * Add a local folder laid out like a Hub repo (picked with a directory input): its files are hashed, and imported
   * into the model cache now (the folder's blobs last one visit), so it runs offline and after reloads.
   */
  addHubFolder(files: File[]): Promise<HubModelEntry | null>;
  /** Remove a Hub model from the list and its files from the model cache. */
  removeHubModel(id: string): Promise<void>;
}

/** The manifest with the Hub models appended (one of the same id as a manifest model is dropped: ids start 'hf:'). */
export function mergeHubModels(manifest: Manifest | null, hub: HubModelEntry[]): Manifest | null {
  if (!hub.length) return manifest;
  const own = (manifest?.models ?? []).filter((m) => !hub.some((h) => h.id === m.id));
  return { version: 1, models: [...own, ...hub] };
}

export const createHubSlice: SliceCreator<HubSlice> = (set, get) => {
  const publish = (hubModels: HubModelEntry[]) => {
    saveHubModels(hubModels);
    set((s) => ({ hubModels, manifest: mergeHubModels(s.manifest && { ...s.manifest, models: s.manifest.models.filter((m) => !m.id.startsWith('hf:')) }, hubModels) }));
  };
  /** One add, from a repo or a folder: the entry joins the list (replacing one of its id) and is chosen for its family. */
  const adding = async (spec: string, resolve: () => Promise<HubModelEntry>): Promise<HubModelEntry | null> => {
    set({ hubAdd: { spec, status: 'checking' } });
    try {
      const entry = await resolve();
      publish([...get().hubModels.filter((m) => m.id !== entry.id), entry]);
      set({ hubAdd: { spec, status: 'added', message: `${entry.name}: ${entry.family} (${entry.hub.architecture}), ${Object.keys(entry.variants).join(', ')}` } });
      await get().chooseModel(entry.family, entry.id);
      return entry;
    } catch (e) {
      const message = `Cannot add ${spec}: ${errorMessage(e)}`;
      set({ hubAdd: { spec, status: 'error', message } });
      get().alert(message);
      return null;
    }
  };
  return {
    hubModels: loadHubModels(),
    hubBase: loadHubBase(),
    hubAdd: null,

    setHubBase(base) {
      try {
        const b = normalizeHubBase(base);
        saveHubBase(b);
        set({ hubBase: b });
      } catch (e) {
        get().alert(errorMessage(e));
      }
    },

    addHubModel(spec) {
      return adding(spec, () => resolveHubModel(spec, { hubBase: get().hubBase }));
    },

    addHubFolder(picked) {
      const source = localSourceFromFiles(picked);
      const name = (source.kind === 'local' && source.name) || 'folder';
      return adding(`local folder “${name}”`, async () => {
        if (source.kind !== 'local') throw new Error('not a folder');
        const entry = await resolveHubFolder(source.files, name);
        const target = entrySource(entry, source);
        const downloader = new ModelDownloader({ store: browserModelStore() });
        for (const [dtype, v] of Object.entries(entry.variants)) {
          await downloader.download({ source: { ...target, files: source.files } as typeof source, files: variantFiles(v!), modelId: entry.id, dtype });
        }
        await get().refreshStored();
        return entry;
      });
    },

    async removeHubModel(id) {
      if (get().stored.some((f) => f.modelId === id)) await get().deleteModel(id);
      publish(get().hubModels.filter((m) => m.id !== id));
    },
  };
};
