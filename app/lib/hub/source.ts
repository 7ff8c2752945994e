/** The model source a Hub entry's files are read from (the app's 'hf' source at the pinned commit). */
import type { ModelEntry } from '../models/manifest-types';
import type { ModelSource } from '../models/sources';
import type { HubModelEntry } from './entry';

export function isHubEntry(entry: ModelEntry): entry is HubModelEntry {
  return (entry as Partial<HubModelEntry>).hub !== undefined;
}

/** The `base` of a Hub-layout model added from a local folder (its files were imported into the model cache). */
export const LOCAL_HUB_BASE = 'local:';

/**
 * Files of a Hub entry come from its repo at its pinned commit (a local folder's: from the model cache, under
 * local://hub-<folder>/…, where adding imported them); any other entry's from the app's current source.
 */
export function entrySource(entry: ModelEntry, appSource: ModelSource): ModelSource {
  if (!isHubEntry(entry)) return appSource;
  if (entry.hub.base === LOCAL_HUB_BASE) return { kind: 'local', name: `hub-${entry.hub.repo}`, files: new Map() };
  return { kind: 'hf', repoUrl: `${entry.hub.base}/${entry.hub.repo}`, revision: entry.hub.revision };
}
