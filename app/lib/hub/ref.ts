/**
 * Where a Hub model lives: a repo id against a Hub base URL (https://huggingface.co or a mirror laid out like it), and
 * the URLs of its files and of the Hub API's file list. The layout is the Hub's own (huggingface_hub's
 * `hf_hub_url` / `HfApi.list_repo_tree`; transformers.js src/utils/hub.js builds the same resolve URLs):
 *   files:     {base}/{owner}/{name}/resolve/{revision}/{path}
 *   revision:  {base}/api/models/{owner}/{name}/revision/{revision}   (its `sha` pins the revision to a commit)
 *   file list: {base}/api/models/{owner}/{name}/tree/{revision}?recursive=true  (`lfs.oid` = the file's sha256)
 */

/** The Hub the app reads `hf:` ids from unless the user names another (the CSP's connect-src must allow it). */
export const DEFAULT_HUB_BASE = 'https://huggingface.co';

export interface HubRef {
  /** The Hub's base URL, without a trailing slash, e.g. 'https://huggingface.co' or 'http://127.0.0.1:4193/mirror'. */
  base: string;
  /** 'owner/name'. */
  repo: string;
  /** Branch, tag or commit ('main' when none is given). */
  revision: string;
}

export class HubRefError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HubRefError';
  }
}

const ID = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const REV = /^[\w.\-/]+$/;

function checkRevision(rev: string, spec: string): string {
  if (!REV.test(rev) || rev.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new HubRefError(`'${spec}': '${rev}' is not a revision (a branch, tag or commit)`);
  return rev;
}

/**
 * Parse what a user types: 'hf:owner/name[@revision]', 'owner/name[@revision]', or a URL of a repo on a Hub or a
 * mirror laid out like it ('https://mirror/prefix/owner/name[/tree/revision]'; the last two path segments are the
 * id, what precedes them the base). `hubBase` is the base for bare ids. Throws HubRefError naming the problem.
 */
export function parseHubRef(spec: string, hubBase: string = DEFAULT_HUB_BASE): HubRef {
  const s = spec.trim();
  if (/^https?:\/\//i.test(s)) {
    let url: URL;
    try {
      url = new URL(s);
    } catch {
      throw new HubRefError(`'${spec}' is not a URL`);
    }
    let segs = url.pathname.split('/').filter(Boolean);
    let revision = 'main';
    const t = segs.indexOf('tree');
    if (t >= 2) {
      revision = checkRevision(decodeURIComponent(segs.slice(t + 1).join('/')) || 'main', spec);
      segs = segs.slice(0, t);
    }
    if (segs.length < 2) throw new HubRefError(`'${spec}': a repo URL ends in /owner/name`);
    const repo = segs.slice(-2).join('/');
    if (!ID.test(repo)) throw new HubRefError(`'${spec}': '${repo}' is not a repo id (owner/name)`);
    const prefix = segs.slice(0, -2).join('/');
    return { base: `${url.origin}${prefix ? `/${prefix}` : ''}`, repo, revision };
  }
  const body = s.replace(/^hf:/i, '');
  const at = body.indexOf('@');
  const repo = at >= 0 ? body.slice(0, at) : body;
  if (!ID.test(repo)) throw new HubRefError(`'${spec}' is not a Hub repo id (expected hf:owner/name[@revision])`);
  const revision = at >= 0 ? checkRevision(body.slice(at + 1), spec) : 'main';
  return { base: normalizeHubBase(hubBase), repo, revision };
}

/** A Hub base URL without trailing slashes; throws HubRefError for anything but http(s). */
export function normalizeHubBase(base: string): string {
  const b = base.trim().replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/i.test(b)) throw new HubRefError(`'${base}' is not a Hub base URL (http(s)://host[/prefix])`);
  return b;
}

/** The repo's URL ({base}/{owner}/{name}): the `repoUrl` of the app's 'hf' model source (lib/models/sources.ts). */
export function hubRepoUrl(ref: HubRef): string {
  return `${ref.base}/${ref.repo}`;
}

/** A file's download URL at the ref's revision. */
export function hubFileUrl(ref: HubRef, path: string): string {
  return `${hubRepoUrl(ref)}/resolve/${encodeURIComponent(ref.revision)}/${path.split('/').map(encodeURIComponent).join('/')}`;
}

/** The API URL of the revision's metadata (its `sha` is the commit). */
export function hubRevisionUrl(ref: HubRef): string {
  return `${ref.base}/api/models/${ref.repo}/revision/${encodeURIComponent(ref.revision)}`;
}

/** The API URL of the revision's recursive file list. */
export function hubTreeUrl(ref: HubRef): string {
  return `${ref.base}/api/models/${ref.repo}/tree/${encodeURIComponent(ref.revision)}?recursive=true`;
}

/** 'hf:owner/name@revision' (the revision left out when it is 'main'). */
export function formatHubRef(ref: Pick<HubRef, 'repo' | 'revision'>): string {
  return `hf:${ref.repo}${ref.revision === 'main' ? '' : `@${ref.revision}`}`;
}
