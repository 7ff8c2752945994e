/**
 * Manifests kept in IndexedDB (idb-keyval) so cached models stay usable: the last one seen per source (offline, or
 * the source is down) and a local folder's (after a reload its blobs are gone).
 */
import { get as idbGet, set as idbSet } from 'idb-keyval';
import { parseManifest } from '../../lib/models/manifest';
import type { Manifest } from '../../lib/models/manifest-types';
import { sourceKey, type ModelSource } from '../../lib/models/sources';

export async function saveLocalManifest(name: string, m: Manifest): Promise<void> {
  await idbSet(`cxr-local-manifest:${name}`, m);
}
/** Saved manifests are validated again on load: one saved by an older version may hold paths now refused. */
function reparsed(m: unknown): Manifest | undefined {
  return m === undefined ? undefined : parseManifest(m);
}
export async function loadLocalManifest(name: string): Promise<Manifest | undefined> {
  return reparsed(await idbGet<unknown>(`cxr-local-manifest:${name}`));
}
export async function saveLastManifest(source: ModelSource, m: Manifest): Promise<void> {
  await idbSet(`cxr-last-manifest:${sourceKey(source)}`, m).catch(() => undefined);
}
export async function loadLastManifest(source: ModelSource): Promise<Manifest | undefined> {
  return reparsed(await idbGet<unknown>(`cxr-last-manifest:${sourceKey(source)}`).catch(() => undefined));
}
