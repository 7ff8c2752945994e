/**
 * Storage you can trust (issue 19.4): cache keys that cannot land under another model's key (a hostile local model
 * pack), sha256 re-checked on every read, and the storage quota compared before a download.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { cacheKeyForUrl, LocalKeyModelStore } from '../../../app/lib/models/cache-keys';
import { ModelDownloader, ModelFileError } from '../../../app/lib/models/downloader';
import { sha256Hex } from '../../../app/lib/models/hashing';
import { ManifestError, parseManifest } from '../../../app/lib/models/manifest';
import { MemoryModelStore } from '../../../app/lib/models/model-cache';
import { checkModelFilePath, checkStableKey, unsafePathReason, UnsafeModelPathError } from '../../../app/lib/models/safe-path';
import { fetchManifest, localSourceFromFiles, resolveFileUrl, type FetchLike } from '../../../app/lib/models/sources';
import { readVerified } from '../../../app/lib/models/verified-read';
import { bytesOf } from '../helpers/bytes';

const HOSTILE = [
  'victim/../victim2/model.onnx',
  'a/%2e%2e/victim/model.onnx',
  'a/%2E%2E/victim/model.onnx',
  'a/%2e./victim/model.onnx',
  'a/.%2E/victim/model.onnx',
  'a/%252e%252e/victim/model.onnx',
  'a\\..\\victim\\model.onnx',
  'a/./model.onnx',
  './model.onnx',
  'a//model.onnx',
  '/etc/model.onnx',
  'C:\\models\\model.onnx',
  'C:/models/model.onnx',
  'https://evil.test/model.onnx',
  'a/%2fvictim/model.onnx',
  'a/%5c..%5cvictim/model.onnx',
  'a/model.onnx?x=1',
  'a/mo\u0000del.onnx',
];

describe('model file paths and cache keys (safe-path.ts)', () => {
  it.each(HOSTILE)('refuses %s', (p) => {
    expect(unsafePathReason(p)).not.toBeNull();
    expect(() => checkModelFilePath(p)).toThrow(UnsafeModelPathError);
  });

  it.each(['pneumonia-vit/model.onnx', 'tiny-sam/fp16/encoder.onnx.data', 'a.b/c..d/model.v2.onnx', 'x/100%25.onnx', 'x/50%.onnx', 'x/...', 'manifest.json'])('accepts %s', (p) => {
    expect(checkModelFilePath(p)).toBe(p);
  });

  it('every hostile path is refused by the manifest parser, naming the field', () => {
    for (const p of HOSTILE) {
      const m = {
        version: 1,
        models: [{ id: 'evil', name: 'Evil', family: 'sam', task: '', weights: 'random-fixture', license: '', source: '', card: { summary: '' }, variants: { fp32: { dtype: 'fp32', files: [{ role: 'encoder', path: p, bytes: 1, sha256: 'a'.repeat(64) }] } } }],
      };
      let err: unknown;
      try {
        parseManifest(m);
      } catch (e) {
        err = e;
      }
      expect(err, p).toBeInstanceOf(ManifestError);
      expect((err as ManifestError).field).toBe('models[0].variants.fp32.files[0].path');
    }
  });

  it('a key whose segments URL parsing would change is refused; a plain one is kept as written', () => {
    expect(checkStableKey('https://huggingface.co/org/m/resolve/main/a/model.onnx')).toBe('https://huggingface.co/org/m/resolve/main/a/model.onnx');
    // The app's own models are keyed origin-relative.
    expect(checkStableKey('/models/pneumonia-vit/model.onnx')).toBe('/models/pneumonia-vit/model.onnx');
    expect(cacheKeyForUrl(resolveFileUrl({ kind: 'app', baseUrl: '/models/' }, 'm/model.onnx'))).toBe('/models/m/model.onnx');
    expect(() => checkStableKey('/models/evil/%2e%2E/victim/model.onnx')).toThrow(UnsafeModelPathError);
    expect(() => checkStableKey('/models/evil/../victim/model.onnx')).toThrow(UnsafeModelPathError);
    for (const k of ['https://h.test/models/evil/%2e%2e/victim/model.onnx', 'https://h.test/models/evil/%2E./victim/model.onnx', 'https://h.test/models/evil/../victim/model.onnx', 'https://h.test/models/evil\\..\\victim/model.onnx', 'https://h.test/models/./m.onnx']) {
      expect(() => checkStableKey(k), k).toThrow(UnsafeModelPathError);
    }
    // The same inputs through the local-folder key mapping.
    expect(() => cacheKeyForUrl('local://evil/a/%2E%2e/../victim/model.onnx')).toThrow(UnsafeModelPathError);
    expect(cacheKeyForUrl('local://pack/m/model.onnx')).toBe('http://localhost/__local-models__/pack/m/model.onnx');
  });

  it('a local folder named only with dots still gets its own key segment', () => {
    const url = resolveFileUrl({ kind: 'local', files: new Map(), name: '..' }, 'm/model.onnx');
    expect(new URL(cacheKeyForUrl(url)).pathname).toBe('/__local-models__/_../m/model.onnx');
  });
});

describe('a hostile local model pack', () => {
  const victimBytes = bytesOf(2000, 3);
  const evilBytes = bytesOf(2000, 99);

  async function hostilePack(path: string) {
    const sha = await sha256Hex(evilBytes);
    const manifest = {
      version: 1,
      models: [{ id: 'evil', name: 'Evil', family: 'sam', task: '', weights: 'random-fixture', license: '', source: '', card: { summary: '' }, variants: { fp32: { dtype: 'fp32', files: [{ role: 'encoder', path, bytes: evilBytes.length, sha256: sha }] } } }],
    };
    const files = [
      { relativePath: 'evil/manifest.json', file: new Blob([JSON.stringify(manifest)]) },
      { relativePath: `evil/${path.replace(/\\/g, '/')}`, file: new Blob([evilBytes as Uint8Array<ArrayBuffer>]) },
    ];
    return { source: localSourceFromFiles(files, 'evil'), sha };
  }

  it.each(['..%2fvictim/model.onnx', 'x/%2e%2e/%2E%2E/victim/model.onnx', 'x\\..\\..\\victim\\model.onnx'])(
    'with file %s: its manifest is refused and nothing it holds reaches the store',
    async (path) => {
      const { source, sha } = await hostilePack(path);
      await expect(fetchManifest(source)).rejects.toThrow(/must be a relative path inside the model source/);
      // Even a caller that skips the manifest cannot store it: the key is refused before any byte is read.
      const store = new LocalKeyModelStore(new MemoryModelStore());
      const victimUrl = resolveFileUrl({ kind: 'local', files: new Map(), name: 'victim' }, 'victim/model.onnx');
      await store.put(victimBytes, { url: victimUrl, path: 'victim/model.onnx', modelId: 'victim', dtype: 'fp32', bytes: victimBytes.length, sha256: await sha256Hex(victimBytes), storedAt: 0 });
      const dl = new ModelDownloader({ store, fetch: (async () => new Response(null, { status: 500 })) as FetchLike });
      await expect(dl.download({ source, files: [{ path, bytes: evilBytes.length, sha256: sha }], modelId: 'evil', dtype: 'fp32' })).rejects.toThrow(UnsafeModelPathError);
      expect((await store.list()).map((f) => f.modelId)).toEqual(['victim']);
      expect(await store.get(victimUrl)).toEqual(victimBytes);
    },
  );
});

describe('readVerified: sha256 of the cached bytes before a session is created', () => {
  it('returns good bytes; a same-length substitution is refused, named and evicted', async () => {
    const good = bytesOf(4096, 5);
    const sha = await sha256Hex(good);
    const store = new MemoryModelStore();
    const url = 'https://models.test/m/model.onnx';
    const meta = { url, path: 'm/model.onnx', modelId: 'm', dtype: 'fp32', bytes: good.length, sha256: sha, storedAt: 0 };
    await store.put(good, meta);
    expect(await readVerified(store, url, { path: 'm/model.onnx', bytes: good.length, sha256: sha })).toEqual(good);
    const bad = good.slice();
    bad[100] ^= 1;
    await store.put(bad, meta); // metadata still claims the good sha256: only re-hashing finds it
    const err = await readVerified(store, url, { path: 'm/model.onnx', bytes: good.length, sha256: sha }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as ModelFileError).code).toBe('hash-mismatch');
    expect((err as Error).message).toContain('m/model.onnx');
    expect((err as Error).message).toContain(sha.slice(0, 12));
    expect((err as Error).message).toContain((await sha256Hex(bad)).slice(0, 12));
    expect(await store.get(url)).toBeNull();
    expect(await store.list()).toEqual([]);
  });

  it('a wrong length is refused and evicted; a missing file is named', async () => {
    const store = new MemoryModelStore();
    const url = 'https://models.test/m/a.onnx';
    const b = bytesOf(10);
    await store.put(b, { url, path: 'm/a.onnx', modelId: 'm', dtype: 'fp32', bytes: 10, sha256: await sha256Hex(b), storedAt: 0 });
    await expect(readVerified(store, url, { path: 'm/a.onnx', bytes: 11, sha256: await sha256Hex(b) })).rejects.toMatchObject({ code: 'size-mismatch' });
    expect(await store.get(url)).toBeNull();
    await expect(readVerified(store, url, { path: 'm/a.onnx', bytes: 10, sha256: await sha256Hex(b) })).rejects.toThrow(/m\/a\.onnx is not in the model cache/);
  });
});

describe('download vs storage quota', () => {
  const SRC = { kind: 'app' as const, baseUrl: 'https://models.test/' };
  it('refuses before fetching when the missing files exceed quota − usage, naming both numbers', async () => {
    const data = bytesOf(3 * 2 ** 20, 2);
    const sha = await sha256Hex(data);
    let fetches = 0;
    const fetchImpl: FetchLike = async () => {
      fetches++;
      return new Response(data as Uint8Array<ArrayBuffer>);
    };
    const store = new MemoryModelStore({ usage: 9 * 2 ** 20, quota: 11 * 2 ** 20 });
    const dl = new ModelDownloader({ store, fetch: fetchImpl });
    const err = await dl.download({ source: SRC, files: [{ path: 'm/model.onnx', bytes: data.length, sha256: sha }], modelId: 'm', dtype: 'fp32' }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelFileError);
    expect((err as ModelFileError).code).toBe('no-space');
    expect((err as Error).message).toMatch(/needs 3\.0 MB of browser storage but only 2\.0 MB is free \(9\.0 MB used of a 11\.0 MB quota\); nothing was downloaded/);
    expect(fetches).toBe(0);
    expect(await store.list()).toEqual([]);
  });

  it('files already cached do not count; a fitting download goes ahead', async () => {
    const a = bytesOf(2 ** 20, 4);
    const b = bytesOf(2 ** 20, 6);
    const files = { 'm/a.onnx': a, 'm/b.onnx': b } as Record<string, Uint8Array>;
    const fetchImpl: FetchLike = async (url) => new Response(files[url.replace('https://models.test/', '')] as Uint8Array<ArrayBuffer>);
    const store = new MemoryModelStore({ usage: 0, quota: 1.5 * 2 ** 20 });
    await store.put(a, { url: 'https://models.test/m/a.onnx', path: 'm/a.onnx', modelId: 'm', dtype: 'fp32', bytes: a.length, sha256: await sha256Hex(a), storedAt: 0 });
    const dl = new ModelDownloader({ store, fetch: fetchImpl });
    const out = await dl.download({
      source: SRC,
      files: [
        { path: 'm/a.onnx', bytes: a.length, sha256: await sha256Hex(a) },
        { path: 'm/b.onnx', bytes: b.length, sha256: await sha256Hex(b) },
      ],
      modelId: 'm',
      dtype: 'fp32',
    });
    expect(out.get('m/b.onnx')).toEqual(b);
  });
});
