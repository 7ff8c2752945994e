/**
 * Hub models in the CLIs (`--model hf:owner/name[@rev]`): their files are downloaded once into a local cache laid
 * out <root>/<host>/<owner>/<name>/<commit>/<path> (root: $CXR_HUB_CACHE, else ~/.cache/cxr-studio/hub), each
 * checked against the entry's sha256 and size before it is kept (written to a temporary name, renamed when good), and
 * re-hashed on every run like the models folder's files (model-files.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isHubEntry } from '../../lib/hub/source';
import { entrySource } from '../../lib/hub/source';
import { sha256Hex } from '../../lib/models/hashing';
import { variantFiles } from '../../lib/models/manifest';
import type { ModelFiles } from '../../lib/models/model-files';
import { resolveFileUrl, type ModelSource } from '../../lib/models/sources';
import { nodeModelFiles } from './model-files';

export function hubCacheRoot(): string {
  return path.resolve(process.env.CXR_HUB_CACHE || path.join(os.homedir(), '.cache', 'cxr-studio', 'hub'));
}

/** The folder holding an 'hf' source's files (null for any other source). */
export function hubDirFor(source: ModelSource, root = hubCacheRoot()): string | null {
  if (source.kind !== 'hf') return null;
  const u = new URL(source.repoUrl);
  const segs = [u.host.replace(/:/g, '_'), ...u.pathname.split('/').filter(Boolean), source.revision ?? 'main'];
  if (segs.some((s) => s === '.' || s === '..')) throw new Error(`not a repo URL: ${source.repoUrl}`);
  return path.join(root, ...segs);
}

/**
 * GET `url`, sent once more when it fails at the socket (no HTTP answer): a keep-alive connection the server closed
 * while this process was busy creating a session (the event loop blocked past undici's idle timer) fails the next
 * request with "fetch failed"; a new connection then succeeds. HTTP errors are answers and are not retried.
 */
async function getRetryingSocketError(fetchImpl: typeof fetch, url: string): Promise<Response> {
  try {
    return await fetchImpl(url);
  } catch {
    return await fetchImpl(url);
  }
}

/**
 * ModelFiles for the CLIs: Hub entries are fetched into the Hub cache (fetchImpl: global fetch), others must be in
 * `modelsDir` (nodeModelFiles). Throws naming the file on an HTTP error, a size or a sha256 mismatch (nothing kept).
 */
export function nodeHubModelFiles(modelsDir: string, fetchImpl: typeof fetch = fetch): ModelFiles {
  const local = nodeModelFiles(modelsDir);
  const appSource: ModelSource = { kind: 'local', files: new Map(), name: modelsDir };
  return {
    async ensure(entry, dtype, opts) {
      if (!isHubEntry(entry)) return local.ensure(entry, dtype, opts);
      const variant = entry.variants[dtype];
      if (!variant) throw new Error(`${entry.name}: no ${dtype} variant`);
      const source = entrySource(entry, appSource);
      const dir = hubDirFor(source)!;
      for (const f of variantFiles(variant)) {
        const p = path.join(dir, f.path);
        if (fs.existsSync(p)) {
          const have = fs.readFileSync(p);
          if (have.byteLength === f.bytes && (await sha256Hex(new Uint8Array(have.buffer, have.byteOffset, have.byteLength))) === f.sha256) continue;
          fs.rmSync(p); // damaged or replaced: fetched again below
        }
        const url = resolveFileUrl(source, f.path);
        const res = await getRetryingSocketError(fetchImpl, url);
        if (!res.ok) throw new Error(`${f.path}: ${url} answered HTTP ${res.status}`);
        const bytes = new Uint8Array(await res.arrayBuffer());
        if (bytes.byteLength !== f.bytes) throw new Error(`${f.path}: ${bytes.byteLength} bytes from ${url}, expected ${f.bytes}; not kept`);
        const h = await sha256Hex(bytes);
        if (h !== f.sha256) throw new Error(`${f.path} failed its integrity check (sha256 ${h.slice(0, 12)}…, expected ${f.sha256.slice(0, 12)}…); not kept`);
        fs.mkdirSync(path.dirname(p), { recursive: true });
        const tmp = `${p}.part-${process.pid}`;
        fs.writeFileSync(tmp, bytes);
        fs.renameSync(tmp, p);
      }
    },
  };
}
