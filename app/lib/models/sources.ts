/**
 * Where model files come from: the app's own public/models/, a Hugging Face repo, or a folder the user picked.
 * Every source is read through `openFile`, which returns a fetch Response (a Blob-backed one for local folders), so
 * the downloader streams them all the same way.
 */
import { parseManifest } from './manifest';
import type { Manifest } from './manifest-types';
import { checkModelFilePath } from './safe-path';

export type ModelSource =
  | { kind: 'app'; baseUrl?: string }
  | { kind: 'hf'; repoUrl: string; revision?: string }
  | { kind: 'local'; files: Map<string, Blob>; name?: string };

export type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

/** The app's own models folder when a source names none; the browser passes `${BASE_URL}models/` (sourceFromSetting). */
export const DEFAULT_APP_MODELS_URL = '/models/';

/** The user's model-source setting, as persisted (a local folder by name: its blobs live only for one visit). */
export type ModelSourceSetting =
  | { kind: 'app' }
  /** A Hugging Face-style repo: files at `${repoUrl}/resolve/${revision}/<path>`. */
  | { kind: 'hf'; repoUrl: string; revision?: string }
  /** A local folder the user picked; its files are imported into the model cache (the blobs live only this visit). */
  | { kind: 'local'; name: string };

/** The source of a setting; `appModelsUrl` is where the app's own models are served. */
export function sourceFromSetting(s: ModelSourceSetting, appModelsUrl?: string, localFiles?: Map<string, Blob>): ModelSource {
  if (s.kind === 'hf') return { kind: 'hf', repoUrl: s.repoUrl, revision: s.revision };
  if (s.kind === 'local') return { kind: 'local', name: s.name, files: localFiles ?? new Map() };
  return appModelsUrl ? { kind: 'app', baseUrl: appModelsUrl } : { kind: 'app' };
}

/** The source as the workers and the cache keys see it (a local folder's blobs stay on the main thread). */
export function workerSource(source: ModelSource): ModelSource {
  return source.kind === 'local' ? { kind: 'local', files: new Map(), name: source.name } : source;
}

/** The source in words, for the model manager. */
export function describeSource(s: ModelSource): string {
  if (s.kind === 'hf') return `${s.repoUrl} (revision ${s.revision ?? 'main'})`;
  if (s.kind === 'local') return `local folder “${s.name ?? 'folder'}”`;
  return "the app's own models";
}

/** A stable key of a source (saved manifests are keyed by it). */
export function sourceKey(s: ModelSource): string {
  return s.kind === 'hf' ? `hf:${s.repoUrl}@${s.revision ?? 'main'}` : s.kind === 'local' ? `local:${s.name}` : 'app';
}

function joinUrl(base: string, path: string): string {
  return `${base.endsWith('/') ? base : `${base}/`}${path.replace(/^\/+/, '')}`;
}

/** Normalize 'org/name' or 'https://huggingface.co/org/name/' to 'https://huggingface.co/org/name'. */
export function normalizeHfRepoUrl(repo: string): string {
  const r = repo.trim().replace(/\/+$/, '');
  if (/^https?:\/\//i.test(r)) return r;
  if (/^[\w.-]+\/[\w.-]+$/.test(r)) return `https://huggingface.co/${r}`;
  throw new Error(`Not a Hugging Face repository: '${repo}' (expected 'org/name' or a https URL)`);
}

/** A local folder's name as one URL path segment: encoded, and never a dot segment ('.', '..') the URL parser drops. */
function localNameSegment(name: string | undefined): string {
  const n = encodeURIComponent(name || 'folder');
  return /^\.+$/.test(n) ? `_${n}` : n;
}

/**
 * The URL of a file of the source; also the cache key. Local folders get a synthetic 'local://<name>/<path>' URL
 * (never fetched; see openFile).
 */
export function resolveFileUrl(source: ModelSource, path: string): string {
  // Leading slashes are dropped (the source is the root); anything else unsafe is refused (UnsafeModelPathError).
  const clean = checkModelFilePath(path.replace(/^\/+/, ''));
  switch (source.kind) {
    case 'app':
      return joinUrl(source.baseUrl ?? DEFAULT_APP_MODELS_URL, clean);
    case 'hf':
      return `${normalizeHfRepoUrl(source.repoUrl)}/resolve/${encodeURIComponent(source.revision ?? 'main')}/${clean}`;
    case 'local':
      return `local://${localNameSegment(source.name)}/${clean}`;
  }
}

/** Open one file of the source as a Response (404 Response for a local file that is not in the folder). */
export async function openFile(source: ModelSource, path: string, init?: RequestInit, fetchImpl: FetchLike = (u, i) => fetch(u, i)): Promise<Response> {
  if (source.kind === 'local') {
    const blob = source.files.get(path.replace(/^\/+/, ''));
    if (!blob) return new Response(null, { status: 404, statusText: `Not in the chosen folder: ${path}` });
    const range = init?.headers ? new Headers(init.headers).get('Range') : null;
    const m = range && /^bytes=(\d+)-$/.exec(range);
    if (m) {
      const start = Number(m[1]);
      return new Response(blob.slice(start), { status: 206, headers: { 'Content-Length': String(blob.size - start) } });
    }
    return new Response(blob, { status: 200, headers: { 'Content-Length': String(blob.size) } });
  }
  return fetchImpl(resolveFileUrl(source, path), init);
}

/** Fetch and validate manifest.json at the root of the source. */
export async function fetchManifest(source: ModelSource, fetchImpl?: FetchLike): Promise<Manifest> {
  const res = await openFile(source, 'manifest.json', { cache: 'no-cache' }, fetchImpl);
  if (!res.ok) throw new Error(`Could not load the model manifest (${resolveFileUrl(source, 'manifest.json')}): HTTP ${res.status}`);
  let json: unknown;
  try {
    json = await res.json();
  } catch (e) {
    throw new Error(`The model manifest at ${resolveFileUrl(source, 'manifest.json')} is not valid JSON: ${(e as Error).message}`);
  }
  return parseManifest(json);
}

/**
 * Build a local source from files picked with <input webkitdirectory> (or a drop): paths are made relative to the
 * folder that holds manifest.json (or to the picked folder when there is none).
 */
export function localSourceFromFiles(files: Iterable<File | { file: Blob; relativePath: string }>, name?: string): ModelSource {
  const entries: [string, Blob][] = [];
  for (const f of files) {
    if (f instanceof Blob) {
      const rel = (f as File & { webkitRelativePath?: string }).webkitRelativePath || (f as File).name;
      entries.push([rel.replace(/\\/g, '/'), f]);
    } else entries.push([f.relativePath.replace(/\\/g, '/'), f.file]);
  }
  const manifest = entries.map(([p]) => p).filter((p) => p === 'manifest.json' || p.endsWith('/manifest.json')).sort((a, b) => a.length - b.length)[0];
  let prefix = '';
  if (manifest) prefix = manifest.slice(0, manifest.length - 'manifest.json'.length);
  else {
    const firsts = new Set(entries.map(([p]) => (p.includes('/') ? p.split('/')[0] + '/' : '')));
    if (firsts.size === 1) prefix = [...firsts][0];
  }
  const map = new Map<string, Blob>();
  for (const [p, b] of entries) if (p.startsWith(prefix)) map.set(p.slice(prefix.length), b);
  return { kind: 'local', files: map, name: name ?? (prefix.replace(/\/$/, '') || 'folder') };
}
