#!/usr/bin/env node
/**
 * A local server that answers like the Hugging Face Hub for the repos in a folder laid out ROOT/OWNER/NAME/...
 * (tests/.hub-fixtures, written by `cxr-export hub-fixtures`; any Hub-layout folder works). Plain Node, no deps.
 *
 *   node scripts/hub-server.mjs --root DIR [--port 4199] [--host 127.0.0.1] [--offline-file X]
 *                               [--corrupt OWNER/NAME/PATH]... [--hide OWNER/NAME/PATH]... [--redirect-lfs]
 *
 * Endpoints (as huggingface.co serves them; huggingface_hub's HfApi and transformers.js read the same fields):
 *   GET|HEAD /{owner}/{name}/resolve/{revision}/{path}   file bytes; ETag (LFS: "sha256", else "git blob sha1"),
 *            X-Linked-Etag / X-Linked-Size (LFS files), X-Repo-Commit, Content-Length, Accept-Ranges, Range -> 206
 *   GET /api/models/{owner}/{name}[/revision/{rev}][?blobs=true]   {id, sha, siblings: [{rfilename, ...}], config, ...}
 *   GET /api/models/{owner}/{name}/tree/{rev}[/{dir}][?recursive=1]
 *            [{type: "file"|"directory", oid, size, path, lfs?: {oid: sha256, size, pointerSize}}]
 *   Errors: 404 JSON {"error": ...} with X-Error-Code RepositoryNotFound / RevisionNotFound / EntryNotFound.
 *   Every answer has CORS headers (Access-Control-Allow-Origin: *, the headers above exposed); OPTIONS preflight.
 * Revisions: "main" and the repo's commit sha (a sha1 over its file list and blob ids, so it changes with content).
 * LFS: files matching the Hub's default .gitattributes patterns (*.onnx, *.onnx_data, *.bin, *.safetensors, ...).
 *
 * Test controls:
 *   --offline-file X  while file X exists, every request is dropped (socket destroyed: a network error, as offline)
 *   --corrupt R/P     serve R/P with one byte flipped (same size) while metadata keeps the true sha256
 *   --hide R/P        R/P is absent (404 EntryNotFound, not listed)
 *   --redirect-lfs    resolve of an LFS file answers 302 (with X-Linked-Etag / X-Linked-Size / ETag) to
 *                     /_lfs/{owner}/{name}/{sha256}/{basename}, which serves the bytes: the Hub's CDN redirect
 *   POST /_control {offline?, corrupt?: [..], hide?: [..], redirectLfs?} sets them at run time; GET /_requests lists the requests
 *   served ({method, path, status, bytes}), DELETE /_requests clears the list. /_control and /_requests are never
 *   dropped by offline.
 * Import: `import { createHubServer } from './hub-server.mjs'` -> {server, url, close(), state} (tests).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const LFS_PATTERNS = [/\.onnx$/, /\.onnx_data$/, /\.onnx\.data$/, /\.bin$/, /\.safetensors$/, /\.msgpack$/, /\.h5$/,
  /\.pt$/, /\.pth$/, /\.ckpt$/, /\.pb$/, /\.tflite$/, /\.npy$/, /\.npz$/, /\.gz$/, /\.zip$/, /\.tar$/, /\.ot$/,
  /\.model$/, /\.wasm$/];
const EXPOSE = ['ETag', 'Content-Length', 'Content-Range', 'Accept-Ranges', 'X-Linked-Etag', 'X-Linked-Size',
  'X-Repo-Commit', 'X-Error-Code', 'X-Error-Message', 'Link', 'Location'].join(', ');
const MIME = { '.json': 'application/json', '.txt': 'text/plain; charset=utf-8', '.md': 'text/markdown; charset=utf-8',
  '.png': 'image/png' };

/** Hash cache: absolute path -> {key: size+mtime, sha256, blob} (the fixtures are regenerated in place). */
const hashCache = new Map();

function fileHashes(abs) {
  const st = fs.statSync(abs);
  const key = `${st.size}:${st.mtimeMs}`;
  const hit = hashCache.get(abs);
  if (hit && hit.key === key) return hit;
  const bytes = fs.readFileSync(abs);
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex');
  // git's blob id: sha1("blob <size>\0" + content)
  const blob = crypto.createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
  const rec = { key, size: st.size, sha256, blob };
  hashCache.set(abs, rec);
  return rec;
}

const isLfs = (p) => LFS_PATTERNS.some((re) => re.test(p));

function walk(dir, prefix = '') {
  const out = [];
  // byte order, as git sorts tree entries
  for (const e of fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...walk(path.join(dir, e.name), rel));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

/** The repo at ROOT/owner/name as the Hub describes it, or null. */
function loadRepo(root, owner, name, state) {
  if (!/^[\w.-]+$/.test(owner) || !/^[\w.-]+$/.test(name) || owner.startsWith('.') || owner.startsWith('_')) return null;
  const dir = path.join(root, owner, name);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return null;
  const id = `${owner}/${name}`;
  const files = walk(dir).filter((p) => !state.hide.has(`${id}/${p}`)).map((p) => {
    const h = fileHashes(path.join(dir, p));
    return { path: p, abs: path.join(dir, p), size: h.size, sha256: h.sha256, blob: h.blob, lfs: isLfs(p) };
  });
  const sha = crypto.createHash('sha1');
  for (const f of files) sha.update(`${f.path}\0${f.blob}\n`);
  return { id, owner, name, dir, files, sha: sha.digest('hex') };
}

function cors(res) {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Expose-Headers', EXPOSE);
}

function sendJson(res, status, body, extra = {}) {
  const data = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': data.length, ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : data);
  return data.length;
}

function notFound(res, code, message) {
  return sendJson(res, 404, { error: message }, { 'X-Error-Code': code, 'X-Error-Message': message });
}

function readConfig(repo) {
  try {
    const c = JSON.parse(fs.readFileSync(path.join(repo.dir, 'config.json'), 'utf8'));
    return { architectures: c.architectures, model_type: c.model_type };
  } catch {
    return undefined;
  }
}

function modelInfo(repo, blobs) {
  const config = readConfig(repo);
  const mtime = Math.max(0, ...repo.files.map((f) => fs.statSync(f.abs).mtimeMs));
  return {
    _id: crypto.createHash('md5').update(repo.id).digest('hex').slice(0, 24),
    id: repo.id, modelId: repo.id, author: repo.owner, sha: repo.sha,
    lastModified: new Date(mtime).toISOString(), private: false, disabled: false, gated: false,
    library_name: 'transformers.js', tags: ['transformers.js', 'onnx', ...(config?.model_type ? [config.model_type] : [])],
    ...(config ? { config } : {}),
    siblings: repo.files.map((f) => blobs
      ? { rfilename: f.path, blobId: f.blob, size: f.size,
        ...(f.lfs ? { lfs: { sha256: f.sha256, size: f.size, pointerSize: pointerSize(f) } } : {}) }
      : { rfilename: f.path }),
  };
}

/** Size of the git-lfs pointer file the repo stores instead of the bytes. */
function pointerSize(f) {
  return `version https://git-lfs.github.com/spec/v1\noid sha256:${f.sha256}\nsize ${f.size}\n`.length;
}

function treeEntries(repo, dirPath, recursive) {
  const base = dirPath ? `${dirPath.replace(/\/+$/, '')}/` : '';
  const entries = new Map();
  for (const f of repo.files) {
    if (!f.path.startsWith(base)) continue;
    const rest = f.path.slice(base.length).split('/');
    // directories on the way (each once), then the file when it is in range
    for (let i = 1; i < rest.length; i++) {
      if (!recursive && i > 1) break;
      const d = base + rest.slice(0, i).join('/');
      if (!entries.has(d)) {
        const oid = crypto.createHash('sha1').update(`tree ${repo.sha} ${d}`).digest('hex');
        entries.set(d, { type: 'directory', oid, size: 0, path: d });
      }
    }
    if (!recursive && rest.length > 1) continue;
    entries.set(f.path, { type: 'file', oid: f.blob, size: f.size, path: f.path,
      ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize: pointerSize(f) } } : {}) });
  }
  return [...entries.values()];
}

function revisionOk(repo, rev) {
  return rev === 'main' || rev === repo.sha;
}

function serveFile(req, res, repo, f, state) {
  const etag = f.lfs ? `"${f.sha256}"` : `"${f.blob}"`;
  const headers = { 'Content-Type': MIME[path.extname(f.path)] ?? 'application/octet-stream', 'ETag': etag,
    'X-Repo-Commit': repo.sha, 'Accept-Ranges': 'bytes', 'Cache-Control': 'no-cache' };
  if (f.lfs) Object.assign(headers, { 'X-Linked-Etag': `"${f.sha256}"`, 'X-Linked-Size': String(f.size) });
  let bytes = fs.readFileSync(f.abs);
  if (state.corrupt.has(`${repo.id}/${f.path}`) && bytes.length > 0) {
    bytes = Buffer.from(bytes);
    const i = bytes.length >> 1;
    bytes[i] ^= 0xff;
  }
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    res.end();
    return 0;
  }
  let status = 200;
  let body = bytes;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    let start = m && m[1] !== '' ? Number(m[1]) : NaN;
    let end = m && m[2] !== '' ? Number(m[2]) : bytes.length - 1;
    if (m && m[1] === '' && m[2] !== '') { start = Math.max(0, bytes.length - Number(m[2])); end = bytes.length - 1; }
    if (!m || !(start >= 0) || start >= bytes.length || end < start) {
      res.writeHead(416, { ...headers, 'Content-Range': `bytes */${bytes.length}` });
      res.end();
      return 0;
    }
    end = Math.min(end, bytes.length - 1);
    body = bytes.subarray(start, end + 1);
    status = 206;
    headers['Content-Range'] = `bytes ${start}-${end}/${bytes.length}`;
  }
  headers['Content-Length'] = String(body.length);
  res.writeHead(status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
  return req.method === 'HEAD' ? 0 : body.length;
}

function handle(req, res, root, state) {
  cors(res);
  const url = new URL(req.url, 'http://x');
  const parts = url.pathname.split('/').filter(Boolean).map((p) => decodeURIComponent(p));
  if (req.method === 'OPTIONS') {
    res.writeHead(204, { 'Access-Control-Allow-Methods': 'GET, HEAD, OPTIONS',
      'Access-Control-Allow-Headers': req.headers['access-control-request-headers'] ?? 'Range, Content-Type, Authorization',
      'Access-Control-Max-Age': '600' });
    res.end();
    return 0;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method} not allowed` });
  if (parts.includes('..')) return notFound(res, 'EntryNotFound', 'Entry not found');
  if (parts[0] === 'api' && parts[1] === 'models' && parts.length >= 4) {
    const repo = loadRepo(root, parts[2], parts[3], state);
    if (!repo) return notFound(res, 'RepositoryNotFound', 'Repository not found');
    const rest = parts.slice(4);
    if (rest.length === 0) return sendJson(res, 200, modelInfo(repo, url.searchParams.get('blobs') === 'true'));
    if ((rest[0] === 'revision' || rest[0] === 'tree') && rest.length >= 2) {
      if (!revisionOk(repo, rest[1])) return notFound(res, 'RevisionNotFound', `Invalid rev id: ${rest[1]}`);
      if (rest[0] === 'revision') return sendJson(res, 200, modelInfo(repo, url.searchParams.get('blobs') === 'true'));
      const dir = rest.slice(2).join('/');
      const rec = ['1', 'true'].includes(url.searchParams.get('recursive') ?? '');
      if (dir && !repo.files.some((f) => f.path.startsWith(`${dir}/`))) {
        return notFound(res, 'EntryNotFound', `${dir} does not exist on "${rest[1]}"`);
      }
      return sendJson(res, 200, treeEntries(repo, dir, rec));
    }
    return notFound(res, 'EntryNotFound', 'Entry not found');
  }
  if (parts.length >= 5 && parts[2] === 'resolve') {
    const repo = loadRepo(root, parts[0], parts[1], state);
    if (!repo) return notFound(res, 'RepositoryNotFound', 'Repository not found');
    if (!revisionOk(repo, parts[3])) return notFound(res, 'RevisionNotFound', `Invalid rev id: ${parts[3]}`);
    const rel = parts.slice(4).join('/');
    const f = repo.files.find((x) => x.path === rel);
    if (!f) return notFound(res, 'EntryNotFound', `${rel} does not exist on "${parts[3]}"`);
    if (f.lfs && state.redirectLfs) {
      // the Hub answers an LFS file with a 302 to its CDN; the redirect itself carries the linked metadata
      const location = `/_lfs/${repo.id}/${f.sha256}/${encodeURIComponent(path.basename(f.path))}`;
      res.writeHead(302, { Location: location, 'X-Linked-Etag': `"${f.sha256}"`, 'X-Linked-Size': String(f.size),
        'X-Repo-Commit': repo.sha, 'ETag': `"${f.sha256}"`, 'Content-Length': '0' });
      res.end();
      return 0;
    }
    return serveFile(req, res, repo, f, state);
  }
  if (parts[0] === '_lfs' && parts.length >= 5) {
    // the "CDN" behind --redirect-lfs: /_lfs/{owner}/{name}/{sha256}/{basename}
    const repo = loadRepo(root, parts[1], parts[2], state);
    const f = repo?.files.find((x) => x.lfs && x.sha256 === parts[3]);
    if (!repo || !f) return sendJson(res, 404, { error: 'Not found' });
    return serveFile(req, res, repo, f, state);
  }
  return notFound(res, 'RepositoryNotFound', 'Repository not found');
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

async function control(req, res, state) {
  cors(res);
  if (req.url.startsWith('/_requests')) {
    if (req.method === 'DELETE') state.requests.length = 0;
    return sendJson(res, 200, state.requests);
  }
  if (req.method !== 'POST') return sendJson(res, 200, describe(state));
  try {
    const body = JSON.parse((await readBody(req)) || '{}');
    if (typeof body.offline === 'boolean') state.offline = body.offline;
    if (Array.isArray(body.corrupt)) state.corrupt = new Set(body.corrupt);
    if (Array.isArray(body.hide)) state.hide = new Set(body.hide);
    if (typeof body.redirectLfs === 'boolean') state.redirectLfs = body.redirectLfs;
    return sendJson(res, 200, describe(state));
  } catch (e) {
    return sendJson(res, 400, { error: `bad control body: ${e.message}` });
  }
}

const describe = (s) => ({ offline: s.offline, corrupt: [...s.corrupt], hide: [...s.hide], redirectLfs: s.redirectLfs });

/**
 * Starts the server. opts: {root, port = 4199 (0: any free port), host = '127.0.0.1', offlineFile, corrupt: [],
 * hide: [], redirectLfs: false}. Resolves to {server, url, state, close()}.
 */
export function createHubServer(opts) {
  const root = path.resolve(opts.root);
  if (!fs.existsSync(root)) throw new Error(`hub-server: --root ${root} does not exist`);
  const state = { offline: false, corrupt: new Set(opts.corrupt ?? []), hide: new Set(opts.hide ?? []), requests: [],
    redirectLfs: Boolean(opts.redirectLfs) };
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/_control') || req.url.startsWith('/_requests')) {
      control(req, res, state).catch(() => res.destroy());
      return;
    }
    if (state.offline || (opts.offlineFile && fs.existsSync(opts.offlineFile))) {
      state.requests.push({ method: req.method, path: req.url, status: 0, bytes: 0 });
      req.socket.destroy();
      return;
    }
    let bytes = 0;
    try {
      bytes = handle(req, res, root, state);
    } catch (e) {
      bytes = sendJson(res, 500, { error: String(e?.message ?? e) });
    }
    state.requests.push({ method: req.method, path: req.url, status: res.statusCode, bytes });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 4199, opts.host ?? '127.0.0.1', () => {
      const addr = server.address();
      resolve({ server, state, url: `http://${opts.host ?? '127.0.0.1'}:${addr.port}`,
        close: () => new Promise((r) => { server.closeAllConnections?.(); server.close(() => r()); }) });
    });
  });
}

function parseArgs(argv) {
  const o = { corrupt: [], hide: [], port: 4199 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--root') o.root = v();
    else if (a === '--port') o.port = Number(v());
    else if (a === '--host') o.host = v();
    else if (a === '--offline-file') o.offlineFile = path.resolve(v());
    else if (a === '--corrupt') o.corrupt.push(v());
    else if (a === '--hide') o.hide.push(v());
    else if (a === '--redirect-lfs') o.redirectLfs = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!o.root) throw new Error('--root DIR is required');
  if (!Number.isInteger(o.port) || o.port < 0 || o.port > 65535) throw new Error(`bad --port ${o.port}`);
  return o;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { url } = await createHubServer(parseArgs(process.argv.slice(2)));
    console.log(`hub-server: ${url}`);
  } catch (e) {
    console.error(`hub-server: ${e.message}`);
    process.exit(2);
  }
}
