import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { chooseVariant, ManifestError, parseManifest, totalBytes, variantFiles } from '../../../app/lib/models/manifest';
import { sha256Hex } from '../../../app/lib/models/hashing';
import { localSourceFromFiles, normalizeHfRepoUrl, openFile, resolveFileUrl, fetchManifest } from '../../../app/lib/models/sources';
import { lacks, REPO_ROOT } from '../helpers/shared';

const SHA = 'a'.repeat(64);
export function sampleManifest(): any {
  return {
    version: 1,
    models: [
      {
        id: 'pneumonia-vit', name: 'Pneumonia ViT', family: 'classifier', task: 'image-classification', weights: 'trained',
        license: 'MIT', source: 'trained here',
        variants: {
          fp32: { dtype: 'fp32', files: [{ role: 'model', path: 'pneumonia-vit/model.onnx', bytes: 1000, sha256: SHA, external_data: [{ path: 'pneumonia-vit/model.onnx.data', bytes: 500, sha256: SHA }] }] },
          fp16: { dtype: 'fp16', files: [{ role: 'model', path: 'pneumonia-vit/model.fp16.onnx', bytes: 600, sha256: SHA }] },
          int8: { dtype: 'int8', files: [{ role: 'model', path: 'pneumonia-vit/model.int8.onnx', bytes: 300, sha256: SHA }] },
        },
        preprocessing: { size: [224, 224], resize: 'bilinear', mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5], layout: 'NCHW' },
        labels: ['NORMAL', 'PNEUMONIA'],
        card: { summary: 'x', threshold: 0.5, metrics: { accuracy: 0.9 } },
      },
    ],
  };
}

describe('parseManifest', () => {
  it('accepts a valid manifest', () => {
    const m = parseManifest(sampleManifest());
    expect(m.models[0].preprocessing?.size).toEqual([224, 224]);
    expect(m.models[0].card.threshold).toBe(0.5);
  });

  const bad: [string, (m: any) => void, string][] = [
    ['version', (m) => (m.version = 2), 'version'],
    ['sha', (m) => (m.models[0].variants.fp32.files[0].sha256 = 'xyz'), 'models[0].variants.fp32.files[0].sha256'],
    ['bytes', (m) => (m.models[0].variants.fp16.files[0].bytes = -1), 'models[0].variants.fp16.files[0].bytes'],
    ['family', (m) => (m.models[0].family = 'segmenter'), 'models[0].family'],
    ['dtype key', (m) => (m.models[0].variants.fp16.dtype = 'fp32'), 'models[0].variants.fp16.dtype'],
    ['resize', (m) => (m.models[0].preprocessing.resize = 'lanczos'), 'models[0].preprocessing.resize'],
    ['std', (m) => (m.models[0].preprocessing.std = [1, 0, 1]), 'models[0].preprocessing.std[1]'],
    ['labels', (m) => delete m.models[0].labels, 'models[0].labels'],
    ['path traversal', (m) => (m.models[0].variants.int8.files[0].path = '../secret'), 'models[0].variants.int8.files[0].path'],
    ['threshold', (m) => (m.models[0].card.threshold = 2), 'models[0].card.threshold'],
    ['duplicate id', (m) => m.models.push(structuredClone(m.models[0])), 'models[1].id'],
  ];
  for (const [name, mutate, field] of bad) {
    it(`rejects bad ${name}, naming ${field}`, () => {
      const m = sampleManifest();
      mutate(m);
      try {
        parseManifest(m);
        throw new Error('should have thrown');
      } catch (e) {
        expect(e).toBeInstanceOf(ManifestError);
        expect((e as ManifestError).field).toBe(field);
        expect((e as Error).message).toContain(field);
      }
    });
  }

  const real = path.join(REPO_ROOT, 'public/models/manifest.json');
  it.skipIf(lacks(fs.existsSync(real), real))('parses the real public/models/manifest.json', () => {
    const m = parseManifest(JSON.parse(fs.readFileSync(real, 'utf8')));
    expect(m.models.length).toBeGreaterThan(0);
  });
});

describe('chooseVariant / totalBytes', () => {
  const entry = parseManifest(sampleManifest()).models[0];
  it('fp16 only on webgpu with shader-f16', () => {
    expect(chooseVariant(entry, { backend: 'webgpu', shaderF16: true })?.dtype).toBe('fp16');
    expect(chooseVariant(entry, { backend: 'webgpu', shaderF16: false })?.dtype).toBe('fp32');
    expect(chooseVariant(entry, { backend: 'wasm', shaderF16: true })?.dtype).toBe('fp32');
    expect(chooseVariant(entry, { backend: 'wasm', shaderF16: true, prefer: 'fp16' })?.dtype).toBe('fp32');
  });
  it('int8 only when preferred', () => {
    expect(chooseVariant(entry, { backend: 'wasm', shaderF16: false, prefer: 'int8' })?.dtype).toBe('int8');
    expect(chooseVariant(entry, { backend: 'webgpu', shaderF16: true, prefer: 'fp32' })?.dtype).toBe('fp32');
  });
  it('only-fp16 model without shader-f16 → null', () => {
    const e = { ...entry, variants: { fp16: entry.variants.fp16 } };
    expect(chooseVariant(e, { backend: 'webgpu', shaderF16: false })).toBeNull();
  });
  it('totalBytes includes external data', () => {
    expect(totalBytes(entry.variants.fp32!)).toBe(1500);
    expect(variantFiles(entry.variants.fp32!).map((f) => f.path)).toEqual(['pneumonia-vit/model.onnx', 'pneumonia-vit/model.onnx.data']);
  });
});

describe('sources and hashing', () => {
  it('resolves URLs for app, hf and local sources', () => {
    expect(resolveFileUrl({ kind: 'app', baseUrl: '/cxr/models/' }, 'a/b.onnx')).toBe('/cxr/models/a/b.onnx');
    expect(resolveFileUrl({ kind: 'app', baseUrl: 'https://x.org/m' }, '/a.json')).toBe('https://x.org/m/a.json');
    expect(resolveFileUrl({ kind: 'app' }, 'manifest.json')).toMatch(/\/models\/manifest\.json$/);
    expect(resolveFileUrl({ kind: 'hf', repoUrl: 'org/repo' }, 'x/model.onnx')).toBe('https://huggingface.co/org/repo/resolve/main/x/model.onnx');
    expect(resolveFileUrl({ kind: 'hf', repoUrl: 'https://huggingface.co/org/repo/', revision: 'v1' }, 'm.onnx')).toBe('https://huggingface.co/org/repo/resolve/v1/m.onnx');
    expect(() => normalizeHfRepoUrl('not a repo')).toThrow();
  });

  it('local folder: paths relative to the folder holding manifest.json', async () => {
    const mk = (rel: string, text: string) => Object.assign(new File([text], rel.split('/').pop()!), { webkitRelativePath: rel });
    const src = localSourceFromFiles([mk('models/manifest.json', JSON.stringify(sampleManifest())), mk('models/pneumonia-vit/model.onnx', 'abc')]);
    expect(src.kind).toBe('local');
    const res = await openFile(src, 'pneumonia-vit/model.onnx');
    expect(await res.text()).toBe('abc');
    expect((await openFile(src, 'nope.onnx')).status).toBe(404);
    const m = await fetchManifest(src);
    expect(m.models[0].id).toBe('pneumonia-vit');
  });

  it('sha256 matches the known vector', async () => {
    expect(await sha256Hex(new TextEncoder().encode('abc'))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await sha256Hex(new ArrayBuffer(0))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });
});
