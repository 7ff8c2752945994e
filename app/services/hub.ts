/**
 * Adding a model from the Hub (or a mirror laid out like it): read the revision's commit, config.json and file list,
 * recognise the family and the files it needs (app/lib/hub), read and hash the small JSON files, and return the
 * ModelEntry the app's downloader, cache and engines run. Nothing large is downloaded here: an architecture or layout
 * the app cannot run is refused with a message naming what is missing before any graph is fetched.
 *
 * Integrity: a file's sha256 is its LFS oid from the file list when the source gives one (the Hub does for every LFS
 * file, which ONNX graphs are); otherwise the bytes read here, when the model is added, are hashed and that hash is
 * recorded (a non-LFS file over MAX_UNHASHED_BYTES is refused). Every later download and every cache read is checked
 * against the recorded hash (lib/models/downloader.ts, verified-read.ts).
 */
import { sha256Hex } from '../lib/models/hashing';
import type { FetchLike } from '../lib/models/sources';
import { hubModelEntry, type HubJsonFiles, type HubModelEntry, type PinnedHashes } from '../lib/hub/entry';
import { familyLayout, HubLayoutError, parseHubTree, planHubFiles, type HubFileInfo } from '../lib/hub/layout';
import { hubFileUrl, hubRevisionUrl, hubTreeUrl, parseHubRef, type HubRef } from '../lib/hub/ref';
import { LOCAL_HUB_BASE } from '../lib/hub/source';
import { blobRangeReader, httpRangeReader, readLearnedTemperature, WEIGHTS_FILE } from './hub-temperature';

/** A file without an LFS sha256 is read and hashed when the model is added only up to this size. */
export const MAX_UNHASHED_BYTES = 32 * 1024 * 1024;

export class HubSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HubSourceError';
  }
}

async function get(fetchImpl: FetchLike, url: string, what: string): Promise<Response> {
  let res: Response;
  try {
    res = await fetchImpl(url, { cache: 'no-cache' });
  } catch (e) {
    throw new HubSourceError(`${what}: ${url} could not be reached (${(e as Error)?.message ?? String(e)})`);
  }
  if (!res.ok) throw new HubSourceError(`${what}: ${url} answered HTTP ${res.status}${res.status === 404 ? ' (no such repo, revision or file)' : res.status === 401 || res.status === 403 ? ' (a gated or private repo: the app sends no token)' : ''}`);
  return res;
}

function parseJson(bytes: Uint8Array, path: string, repo: string): Record<string, unknown> {
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes));
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw new HubLayoutError(`${repo}: ${path} is not a JSON object (${(e as Error).message})`);
  }
}

/**
 * The ModelEntry of a local folder laid out like a Hub repo (`files`: path in the folder -> Blob). Every file the
 * entry lists is hashed here (there is no LFS metadata): that hash is what the import into the model cache and every
 * later read are checked against. Throws HubLayoutError like resolveHubModel.
 */
export async function resolveHubFolder(files: Map<string, Blob>, name: string): Promise<HubModelEntry> {
  const label = `folder “${name}”`;
  const readBlob = async (p: string) => {
    const b = files.get(p);
    if (!b) throw new HubLayoutError(`${label} has no ${p}`);
    return new Uint8Array(await b.arrayBuffer());
  };
  const config = parseJson(await readBlob('config.json'), 'config.json', label);
  const layout = familyLayout(config, label);
  const tree: HubFileInfo[] = [...files].map(([path, b]) => ({ path, size: b.size }));
  const plan = planHubFiles(layout, tree, label);
  const pinned: PinnedHashes = {};
  const jsonOf = async (p: string) => parseJson(await readBlob(p), p, label);
  for (const f of new Set(plan.variants.flatMap((v) => Object.values(v.files)).concat(Object.values(plan.optional)))) pinned[f.path] = await sha256Hex(await readBlob(f.path));
  const json: HubJsonFiles = { config, preprocessor: await jsonOf('preprocessor_config.json') };
  if (layout.family === 'clip') {
    json.tokenizer = await jsonOf('tokenizer.json');
    if (plan.optional.tokenizer_config) json.tokenizerConfig = await jsonOf('tokenizer_config.json');
    const weights = files.get(WEIGHTS_FILE);
    json.temperature = await readLearnedTemperature(weights && blobRangeReader(weights), (config.architectures as string[])[0]);
  }
  const ref: HubRef = { base: LOCAL_HUB_BASE, repo: name, revision: 'local' };
  const architecture = (config.architectures as string[])[0];
  const entry = hubModelEntry(ref, { base: LOCAL_HUB_BASE, repo: name, requested: 'main', revision: 'local', architecture }, plan, json, pinned);
  return { ...entry, id: `hf:local/${name}`, name: `${name} (local folder)`, source: `local folder “${name}”`, card: { ...entry.card, summary: `External model from the local folder “${name}” (${architecture}): weights not checked by this project.` } };
}

export interface ResolveHubOptions {
  /** Base URL for bare ids ('hf:owner/name'); default https://huggingface.co. */
  hubBase?: string;
  fetch?: FetchLike;
}

/**
 * The ModelEntry of `spec` ('hf:owner/name[@rev]', 'owner/name', or a repo URL on a Hub or mirror). Throws
 * HubRefError (not an id), HubSourceError (unreachable, HTTP error), HubLayoutError (architecture or files the app
 * cannot run, sha256 of a small file not matching its LFS oid).
 */
export async function resolveHubModel(spec: string, opts: ResolveHubOptions = {}): Promise<HubModelEntry> {
  const fetchImpl: FetchLike = opts.fetch ?? ((u, i) => fetch(u, i));
  const asked = parseHubRef(spec, opts.hubBase);
  // The commit the revision points at now: every file is read at that commit, so a later push cannot change them.
  let commit = asked.revision;
  let license: string | undefined;
  const info = (await (await get(fetchImpl, hubRevisionUrl(asked), `${asked.repo}@${asked.revision}`)).json().catch(() => ({}))) as { sha?: unknown; cardData?: { license?: unknown } };
  if (typeof info.sha === 'string' && /^[0-9a-f]{40}$/.test(info.sha)) commit = info.sha;
  if (typeof info.cardData?.license === 'string') license = info.cardData.license;
  const ref: HubRef = { ...asked, revision: commit };

  const pinned: PinnedHashes = {};
  const read = async (f: HubFileInfo | { path: string }): Promise<Uint8Array> => {
    const bytes = new Uint8Array(await (await get(fetchImpl, hubFileUrl(ref, f.path), ref.repo)).arrayBuffer());
    const hash = await sha256Hex(bytes);
    const info = f as Partial<HubFileInfo>;
    if (info.sha256 && hash !== info.sha256) throw new HubLayoutError(`${ref.repo}: ${f.path} does not match the sha256 of the file list (got ${hash.slice(0, 12)}…, listed ${info.sha256.slice(0, 12)}…)`);
    if (info.size !== undefined && bytes.byteLength !== info.size) throw new HubLayoutError(`${ref.repo}: ${f.path} has ${bytes.byteLength} bytes, the file list says ${info.size}`);
    pinned[f.path] = hash;
    return bytes;
  };

  const config = parseJson(await read({ path: 'config.json' }), 'config.json', ref.repo);
  const layout = familyLayout(config, ref.repo);
  const tree = parseHubTree(await (await get(fetchImpl, hubTreeUrl(ref), `${ref.repo}: the file list`)).json(), ref.repo);
  const plan = planHubFiles(layout, tree, ref.repo);
  const byPath = new Map(tree.map((f) => [f.path, f]));
  const jsonOf = async (p: string) => parseJson(await read(byPath.get(p)!), p, ref.repo);
  const json: HubJsonFiles = { config, preprocessor: await jsonOf('preprocessor_config.json') };
  if (layout.family === 'clip') {
    json.tokenizer = await jsonOf('tokenizer.json');
    if (plan.optional.tokenizer_config) json.tokenizerConfig = await jsonOf('tokenizer_config.json');
    // The learned temperature: a few bytes of model.safetensors by Range requests (services/hub-temperature.ts).
    const reader = byPath.has(WEIGHTS_FILE) ? httpRangeReader(fetchImpl, hubFileUrl(ref, WEIGHTS_FILE)) : undefined;
    json.temperature = await readLearnedTemperature(reader, (config.architectures as string[])[0]);
  }
  // Files the source gave no sha256 for (no LFS oid), not read above: hashed now if small, else refused.
  const unhashed = [...new Set(plan.variants.flatMap((v) => Object.values(v.files)).concat(Object.values(plan.optional)))].filter((f) => !f.sha256 && !pinned[f.path]);
  const tooLarge = unhashed.filter((f) => f.size > MAX_UNHASHED_BYTES);
  if (tooLarge.length) throw new HubLayoutError(`${ref.repo}: the source gives no sha256 (LFS oid) for ${tooLarge.map((f) => f.path).join(', ')}, too large to hash when adding (over ${MAX_UNHASHED_BYTES / 2 ** 20} MiB)`);
  for (const f of unhashed) await read(f);
  const architecture = (config.architectures as string[])[0];
  return hubModelEntry(ref, { base: ref.base, repo: ref.repo, requested: asked.revision, revision: commit, architecture }, plan, json, pinned, license);
}
