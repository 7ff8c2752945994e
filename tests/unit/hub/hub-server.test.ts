/**
 * scripts/hub-server.mjs answers like the Hugging Face Hub (issue 20.4): resolve with ETag / X-Linked-Etag /
 * X-Linked-Size / Range, the model-info API's siblings and sha, the tree API with LFS sha256, the Hub's 404 error
 * codes and CORS headers; the test controls (corrupt, hide, offline) behave as described. References are independent
 * of the server's code: sha256 from node:crypto on the file read here, git blob ids from `git hash-object`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubServer, type RunningHubServer } from '../../../scripts/hub-server.mjs';

interface TreeEntry { type: string; oid: string; size: number; path: string; lfs?: { oid: string; size: number } }

const REPO = 'cxr-fixtures/tiny-test';
let root: string;
let hub: RunningHubServer;
const offlineFile = path.join(os.tmpdir(), `hub-offline-${process.pid}-${Date.now()}`);

function write(rel: string, data: Buffer | string): void {
  const p = path.join(root, REPO, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, data);
}
const file = (rel: string) => fs.readFileSync(path.join(root, REPO, rel));
const sha256 = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
const gitBlob = (rel: string) => execFileSync('git', ['hash-object', path.join(root, REPO, rel)], { encoding: 'utf8' }).trim();

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-server-test-'));
  write('config.json', JSON.stringify({ architectures: ['CLIPModel'], model_type: 'clip' }));
  write('tokenizer.json', '{"version":"1.0"}');
  // deterministic pseudo-random bytes standing in for a graph
  write('onnx/model.onnx', crypto.createHash('sha512').update('a').digest().toString('hex').repeat(40));
  write('onnx/model_quantized.onnx', Buffer.from([1]));
  fs.mkdirSync(path.join(root, '_goldens'));
  fs.writeFileSync(path.join(root, '_goldens', 'x.json'), '{}');
  hub = await createHubServer({ root, port: 0, offlineFile, hide: [`${REPO}/tokenizer.json`],
    corrupt: [`${REPO}/onnx/model_quantized.onnx`] });
});

afterAll(async () => {
  await hub?.close();
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(offlineFile, { force: true });
});

describe('hub-server', () => {
  it('model info lists siblings and a 40-hex sha; /revision/main and /revision/<sha> agree', async () => {
    const info = await (await fetch(`${hub.url}/api/models/${REPO}`)).json();
    expect(info.id).toBe(REPO);
    expect(info.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(info.siblings.map((s: { rfilename: string }) => s.rfilename).sort())
      .toEqual(['config.json', 'onnx/model.onnx', 'onnx/model_quantized.onnx']);
    expect(info.config.architectures).toEqual(['CLIPModel']);
    for (const rev of ['main', info.sha]) {
      const r = await fetch(`${hub.url}/api/models/${REPO}/revision/${rev}`);
      expect(r.status).toBe(200);
      expect((await r.json()).sha).toBe(info.sha);
    }
    const bad = await fetch(`${hub.url}/api/models/${REPO}/revision/nope`);
    expect(bad.status).toBe(404);
    expect(bad.headers.get('x-error-code')).toBe('RevisionNotFound');
  });

  it('tree?recursive=1 gives git blob oids and LFS sha256/size for .onnx files', async () => {
    const tree: TreeEntry[] = await (await fetch(`${hub.url}/api/models/${REPO}/tree/main?recursive=1`)).json();
    const byPath = new Map(tree.map((e) => [e.path, e]));
    expect(byPath.get('onnx')?.type).toBe('directory');
    const cfg = byPath.get('config.json')!;
    expect(cfg).toMatchObject({ type: 'file', oid: gitBlob('config.json'), size: file('config.json').length });
    expect(cfg.lfs).toBeUndefined();
    for (const rel of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
      const e = byPath.get(rel)!;
      expect(e.oid).toBe(gitBlob(rel));
      expect(e.lfs).toMatchObject({ oid: sha256(file(rel)), size: file(rel).length });
    }
    const top: TreeEntry[] = await (await fetch(`${hub.url}/api/models/${REPO}/tree/main`)).json();
    expect(top.map((e) => e.path).sort()).toEqual(['config.json', 'onnx']);
    const sub: TreeEntry[] = await (await fetch(`${hub.url}/api/models/${REPO}/tree/main/onnx`)).json();
    expect(sub.map((e) => e.path).sort()).toEqual(['onnx/model.onnx', 'onnx/model_quantized.onnx']);
  });

  it('resolve serves the bytes; HEAD gives ETag, X-Linked-Etag, X-Linked-Size, Content-Length, X-Repo-Commit', async () => {
    const rel = 'onnx/model.onnx';
    const info = await (await fetch(`${hub.url}/api/models/${REPO}`)).json();
    const got = Buffer.from(await (await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`)).arrayBuffer());
    expect(got.equals(file(rel))).toBe(true);
    const head = await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe(`"${sha256(file(rel))}"`);
    expect(head.headers.get('x-linked-etag')).toBe(`"${sha256(file(rel))}"`);
    expect(head.headers.get('x-linked-size')).toBe(String(file(rel).length));
    expect(head.headers.get('content-length')).toBe(String(file(rel).length));
    expect(head.headers.get('x-repo-commit')).toBe(info.sha);
    const small = await fetch(`${hub.url}/${REPO}/resolve/${info.sha}/config.json`, { method: 'HEAD' });
    expect(small.headers.get('etag')).toBe(`"${gitBlob('config.json')}"`);
    expect(small.headers.get('x-linked-etag')).toBeNull();
  });

  it('Range requests give 206 with Content-Range, and 416 past the end', async () => {
    const rel = 'onnx/model.onnx';
    const r = await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`, { headers: { Range: 'bytes=10-19' } });
    expect(r.status).toBe(206);
    expect(r.headers.get('content-range')).toBe(`bytes 10-19/${file(rel).length}`);
    expect(Buffer.from(await r.arrayBuffer()).equals(file(rel).subarray(10, 20))).toBe(true);
    const tail = await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`, { headers: { Range: 'bytes=-5' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(file(rel).subarray(-5))).toBe(true);
    const past = await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`, { headers: { Range: `bytes=${1e6}-` } });
    expect(past.status).toBe(416);
  });

  it('answers the Hub error codes with a JSON error body', async () => {
    const cases: [string, string][] = [
      [`/${REPO}/resolve/main/missing.json`, 'EntryNotFound'],
      [`/cxr-fixtures/nope/resolve/main/config.json`, 'RepositoryNotFound'],
      [`/api/models/cxr-fixtures/nope`, 'RepositoryNotFound'],
      [`/api/models/_goldens/x.json`, 'RepositoryNotFound'],
      [`/${REPO}/resolve/v9/config.json`, 'RevisionNotFound'],
    ];
    for (const [p, code] of cases) {
      const r = await fetch(hub.url + p);
      expect([p, r.status, r.headers.get('x-error-code')]).toEqual([p, 404, code]);
      expect(typeof (await r.json()).error).toBe('string');
    }
  });

  it('sends CORS headers and answers the preflight', async () => {
    const r = await fetch(`${hub.url}/${REPO}/resolve/main/config.json`);
    expect(r.headers.get('access-control-allow-origin')).toBe('*');
    const exposed = (r.headers.get('access-control-expose-headers') ?? '').toLowerCase();
    for (const h of ['etag', 'content-length', 'x-linked-etag', 'x-linked-size', 'x-repo-commit', 'content-range']) {
      expect(exposed).toContain(h);
    }
    const pre = await fetch(`${hub.url}/${REPO}/resolve/main/config.json`, {
      method: 'OPTIONS', headers: { 'Access-Control-Request-Method': 'GET', 'Access-Control-Request-Headers': 'range' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-headers')).toContain('range');
  });

  it('--hide drops a file; --corrupt flips a byte while the metadata keeps the true sha256', async () => {
    expect((await fetch(`${hub.url}/${REPO}/resolve/main/tokenizer.json`)).status).toBe(404);
    const rel = 'onnx/model_quantized.onnx';
    const served = Buffer.from(await (await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`)).arrayBuffer());
    expect(served.length).toBe(file(rel).length);
    expect(served.equals(file(rel))).toBe(false);
    const tree: TreeEntry[] = await (await fetch(`${hub.url}/api/models/${REPO}/tree/main?recursive=true`)).json();
    expect(tree.find((e) => e.path === rel)?.lfs?.oid).toBe(sha256(file(rel)));
  });

  it('redirectLfs answers LFS files with the Hub CDN 302 (linked metadata on the redirect); following it gives the bytes', async () => {
    const rel = 'onnx/model.onnx';
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ redirectLfs: true }) });
    try {
      const r = await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`, { redirect: 'manual' });
      expect(r.status).toBe(302);
      expect(r.headers.get('x-linked-etag')).toBe(`"${sha256(file(rel))}"`);
      expect(r.headers.get('x-linked-size')).toBe(String(file(rel).length));
      expect(r.headers.get('location')).toContain(sha256(file(rel)));
      const followed = await fetch(`${hub.url}/${REPO}/resolve/main/${rel}`);
      expect(followed.status).toBe(200);
      expect(followed.url).toContain('/_lfs/');
      expect(Buffer.from(await followed.arrayBuffer()).equals(file(rel))).toBe(true);
      // small (non-LFS) files are served in place, as on the Hub
      expect((await fetch(`${hub.url}/${REPO}/resolve/main/config.json`, { redirect: 'manual' })).status).toBe(200);
    } finally {
      await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ redirectLfs: false }) });
    }
  });

  it('drops every request while the offline file exists, and logs what it served', async () => {
    await fetch(`${hub.url}/_requests`, { method: 'DELETE' });
    fs.writeFileSync(offlineFile, '');
    await expect(fetch(`${hub.url}/${REPO}/resolve/main/config.json`)).rejects.toThrow();
    fs.rmSync(offlineFile);
    expect((await fetch(`${hub.url}/${REPO}/resolve/main/config.json`)).status).toBe(200);
    const log = await (await fetch(`${hub.url}/_requests`)).json();
    expect(log.map((x: { status: number }) => x.status)).toEqual([0, 200]);
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ offline: true }) });
    await expect(fetch(`${hub.url}/api/models/${REPO}`)).rejects.toThrow();
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ offline: false }) });
    expect((await fetch(`${hub.url}/api/models/${REPO}`)).status).toBe(200);
  });
});
