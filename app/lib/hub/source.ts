/** The model source a Hub entry's files are read from (the app's 'hf' source at the pinned commit). */
import type { ModelEntry } from '../models/manifest-types';
import type { ModelSource } from '../models/sources';
import type { HubModelEntry } from './entry';

export function isHubEntry(entry: ModelEntry): entry is HubModelEntry {
  return (entry as Partial<HubModelEntry>).hub !== undefined;
}

/** Files of a Hub entry come from its repo at its pinned commit; any other entry's from the app's current source. */
export function entrySource(entry: ModelEntry, appSource: ModelSource): ModelSource {
  if (!isHubEntry(entry)) return appSource;
  return { kind: 'hf', repoUrl: `${entry.hub.base}/${entry.hub.repo}`, revision: entry.hub.revision };
}
