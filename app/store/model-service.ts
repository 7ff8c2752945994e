/**
 * Main-thread model plumbing: the model cache, the downloader, the page's view of the GPU, and which variant a model
 * will run with (the workers plan with the same pure function, so both sides agree on the files to download).
 */
import { get as idbGet, set as idbSet } from 'idb-keyval';
import { ModelDownloader } from '../lib/models/downloader';
import { CacheStorageModelStore, type ModelStore, type StoredModelFile } from '../lib/models/model-cache';
import { resolveFileUrl, type ModelSource } from '../lib/models/sources';
import type { Manifest, ModelEntry, ModelVariant } from '../lib/models/manifest-types';
import { modelPlanFacts, planExecution, probeGpu, type BackendOverride, type ExecutionPlan, type GpuFacts } from '../lib/runtime';
import type { ModelSourceSetting } from './settings';
import { LocalKeyModelStore } from './cache-keys';

let store: ModelStore | null = null;
let dl: ModelDownloader | null = null;

export function modelStore(): ModelStore {
  store ??= new LocalKeyModelStore(new CacheStorageModelStore());
  return store;
}

export function modelDownloader(): ModelDownloader {
  dl ??= new ModelDownloader({ store: modelStore() });
  return dl;
}

let gpu: Promise<GpuFacts> | null = null;
export function pageGpu(): Promise<GpuFacts> {
  gpu ??= probeGpu();
  return gpu;
}

export async function planFor(entry: ModelEntry, override: BackendOverride): Promise<{ plan: ExecutionPlan; variant: ModelVariant }> {
  const facts = await pageGpu();
  const plan = planExecution({
    gpu: facts,
    crossOriginIsolated: globalThis.crossOriginIsolated === true,
    hardwareConcurrency: navigator.hardwareConcurrency || 1,
    override,
    ...modelPlanFacts(entry),
  });
  return { plan, variant: entry.variants[plan.dtype]! };
}

/** The source as the workers and the cache keys see it (a local folder's blobs stay on the main thread). */
export function workerSource(source: ModelSource): ModelSource {
  return source.kind === 'local' ? { kind: 'local', files: new Map(), name: source.name } : source;
}

export function sourceFromSetting(s: ModelSourceSetting, localFiles?: Map<string, Blob>): ModelSource {
  if (s.kind === 'hf') return { kind: 'hf', repoUrl: s.repoUrl, revision: s.revision };
  if (s.kind === 'local') return { kind: 'local', name: s.name, files: localFiles ?? new Map() };
  return { kind: 'app' };
}

export function describeSource(s: ModelSource): string {
  if (s.kind === 'hf') return `${s.repoUrl} (revision ${s.revision ?? 'main'})`;
  if (s.kind === 'local') return `local folder “${s.name ?? 'folder'}”`;
  return "the app's own models";
}

/** Which variants of a model are fully in the cache (every file, right sha256). */
export function downloadedVariants(entry: ModelEntry, source: ModelSource, stored: StoredModelFile[]): string[] {
  const byUrl = new Map(stored.map((f) => [f.url, f]));
  const out: string[] = [];
  for (const [dtype, v] of Object.entries(entry.variants)) {
    if (!v?.files.length) continue;
    const ok = v.files.every((f) => byUrl.get(resolveFileUrl(source, f.path))?.sha256 === f.sha256);
    if (ok) out.push(dtype);
  }
  return out;
}

/** A local folder's manifest, kept so its cached models stay usable after a reload (the blobs are gone by then). */
export async function saveLocalManifest(name: string, m: Manifest): Promise<void> {
  await idbSet(`cxr-local-manifest:${name}`, m);
}
export async function loadLocalManifest(name: string): Promise<Manifest | undefined> {
  return idbGet<Manifest>(`cxr-local-manifest:${name}`);
}

function sourceKey(s: ModelSource): string {
  return s.kind === 'hf' ? `hf:${s.repoUrl}@${s.revision ?? 'main'}` : s.kind === 'local' ? `local:${s.name}` : 'app';
}
export async function saveLastManifest(source: ModelSource, m: Manifest): Promise<void> {
  await idbSet(`cxr-last-manifest:${sourceKey(source)}`, m).catch(() => undefined);
}
export async function loadLastManifest(source: ModelSource): Promise<Manifest | undefined> {
  return idbGet<Manifest>(`cxr-last-manifest:${sourceKey(source)}`).catch(() => undefined);
}
