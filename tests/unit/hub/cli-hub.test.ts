/**
 * `npm run label -- DIR --model hf:owner/name --hub URL` (issue 20.2): the CLI adds a Hub repo from
 * scripts/hub-server.mjs, caches its files under $CXR_HUB_CACHE (sha256-checked) and labels with it as PyTorch does
 * (the fixture's golden probabilities); a corrupted graph is refused and nothing is kept.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubServer, type RunningHubServer } from '../../../scripts/hub-server.mjs';
import { ensureHubFixtures } from '../helpers/hub-fixtures';
import { REPO_ROOT } from '../helpers/shared';

const run = promisify(execFile);
const ROOT = path.join(REPO_ROOT, 'tests', '.hub-fixtures');
let hub: RunningHubServer;
let tmp: string;

beforeAll(async () => {
  if (!ensureHubFixtures()) throw new Error(`${ROOT} cannot be written without PyTorch in .venv (npm run setup)`);
  hub = await createHubServer({ root: ROOT, port: 0 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-hub-cli-'));
  fs.mkdirSync(path.join(tmp, 'images', 'PNEUMONIA'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, '_goldens', 'image-32x32.png'), path.join(tmp, 'images', 'PNEUMONIA', 'a.png'));
}, 300_000);
afterAll(async () => {
  await hub?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

const label = (out: string) =>
  run(path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), ['app/cli/label.ts', path.join(tmp, 'images'), '--model', 'hf:cxr-fixtures/tiny-vit-cxr', '--hub', hub.url, '--threads', '1', '--out', out], {
    cwd: REPO_ROOT,
    env: { ...process.env, CXR_HUB_CACHE: path.join(tmp, 'cache') },
  });

describe('label CLI with a Hub model', () => {
  it('labels with hf:cxr-fixtures/tiny-vit-cxr as PyTorch does, its files cached and checked (graphs through the Hub\'s LFS 302)', async () => {
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ redirectLfs: true }) });
    const g = JSON.parse(fs.readFileSync(path.join(ROOT, '_goldens', 'tiny-vit-cxr.json'), 'utf8'));
    const out = path.join(tmp, 'out.csv');
    await label(out);
    const [head, row] = fs.readFileSync(out, 'utf8').trim().split('\n');
    const cols = head.split(',');
    const p = Number(row.split(',')[cols.indexOf('classifier_probability')]);
    console.log(`hub tiny-vit-cxr via npm run label: |ΔP(PNEUMONIA)| ${Math.abs(p - g.outputs.probs.data[1]).toExponential(2)}`);
    expect(Math.abs(p - g.outputs.probs.data[1])).toBeLessThan(1e-4);
    const cached = fs.readdirSync(path.join(tmp, 'cache'), { recursive: true }) as string[];
    expect(cached.some((f) => f.endsWith(path.join('onnx', 'model.onnx')))).toBe(true);
    const served = (await (await fetch(`${hub.url}/_requests`)).json()) as { path: string; status: number }[];
    expect(served.some((r) => r.status === 302 && r.path.endsWith('/onnx/model.onnx'))).toBe(true);
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ redirectLfs: false }) });
  }, 180_000);

  it.each([
    ['tiny-siglip', false, 'probs'],
    ['tiny-clip', true, 'probs_config_scale'],
  ] as const)('--clip hf:cxr-fixtures/%s (model.safetensors hidden: %s): zs_ columns = PyTorch %s; the sidecar names the scoring and temperature', async (name, hide, want) => {
    const g = JSON.parse(fs.readFileSync(path.join(ROOT, '_goldens', `${name}.json`), 'utf8'));
    const keys = g.prompts.map((_: string, i: number) => `L${i}`);
    const promptsFile = path.join(tmp, `prompts-${name}.json`);
    fs.writeFileSync(promptsFile, JSON.stringify(Object.fromEntries(g.prompts.map((p: string, i: number) => [keys[i], [p]]))));
    const out = path.join(tmp, `zs-${name}.csv`);
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ hide: hide ? [`cxr-fixtures/${name}/model.safetensors`] : [] }) });
    try {
      await run(path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), ['app/cli/label.ts', path.join(tmp, 'images'), '--model', 'hf:cxr-fixtures/tiny-vit-cxr', '--clip', `hf:cxr-fixtures/${name}`, '--prompts', promptsFile, '--hub', hub.url, '--threads', '1', '--out', out], {
        cwd: REPO_ROOT,
        env: { ...process.env, CXR_HUB_CACHE: path.join(tmp, 'cache') },
      });
    } finally {
      await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ hide: [] }) });
    }
    const [head, row] = fs.readFileSync(out, 'utf8').trim().split(/\r?\n/);
    const cols = head.split(','), cells = row.split(',');
    const got = keys.map((k: string) => Number(cells[cols.indexOf(`zs_${k}`)]));
    const d = Math.max(...got.map((v: number, i: number) => Math.abs(v - g.outputs[want].data[i])));
    console.log(`hub ${name} zero-shot via npm run label vs PyTorch ${want}: max |Δprob| ${d.toExponential(2)}`);
    expect(d).toBeLessThan(1e-4);
    const meta = JSON.parse(fs.readFileSync(out.replace(/\.csv$/, '.meta.json'), 'utf8'));
    expect(meta.zero_shot_scoring).toBe(name === 'tiny-siglip' ? 'sigmoid' : 'softmax');
    expect(meta.zero_shot_temperature_source).toBe(hide ? 'config' : 'weights');
    expect(Math.abs(meta.zero_shot_logit_scale - (hide ? g.config_logit_scale : g.logit_scale))).toBeLessThan(1e-4);
    if (hide) expect(meta.zero_shot_temperature_note).toMatch(/^temperature from config\.json \(learned logit_scale not available in this repo\): ranking exact, probabilities approximate/);
    else expect(meta.zero_shot_temperature_note).toBeUndefined();
  }, 180_000);

  it('a graph that does not match its LFS sha256 is refused, and not kept', async () => {
    fs.rmSync(path.join(tmp, 'cache'), { recursive: true, force: true });
    await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ corrupt: ['cxr-fixtures/tiny-vit-cxr/onnx/model.onnx'] }) });
    try {
      await expect(label(path.join(tmp, 'bad.csv'))).rejects.toThrow(/onnx\/model\.onnx failed its integrity check/);
    } finally {
      await fetch(`${hub.url}/_control`, { method: 'POST', body: JSON.stringify({ corrupt: [] }) });
    }
    const cached = fs.existsSync(path.join(tmp, 'cache')) ? (fs.readdirSync(path.join(tmp, 'cache'), { recursive: true }) as string[]) : [];
    expect(cached.filter((f) => f.endsWith('.onnx'))).toEqual([]);
  }, 180_000);
});
