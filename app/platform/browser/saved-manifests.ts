/**
 * Manifests kept in IndexedDB (idb-keyval) so cached models stay usable: the last one seen per source (offline, or
 * the source is down) and a local folder's (after a reload its blobs are gone).
 */
import { get as idbGet, set as idbSet } from 'idb-keyval';
import type { Manifest } from '../../lib/models/manifest-types';
import { sourceKey, type ModelSource } from '../../lib/models/sources';

export async function saveLocalManifest(name: string, m: Manifest): Promise<void> {
  await idbSet(`cxr-local-manifest:${name}`, m);
}
export async function loadLocalManifest(name: string): Promise<Manifest | undefined> {
  return idbGet<Manifest>(`cxr-local-manifest:${name}`);
}
export async function saveLastManifest(source: ModelSource, m: Manifest): Promise<void> {
  await idbSet(`cxr-last-manifest:${sourceKey(source)}`, m).catch(() => undefined);
}
export async function loadLastManifest(source: ModelSource): Promise<Manifest | undefined> {
  return idbGet<Manifest>(`cxr-last-manifest:${sourceKey(source)}`).catch(() => undefined);
}
