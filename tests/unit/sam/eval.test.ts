import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { histogram01, lungPrompt, parseBoxes, splitLungs, summarizeEval, worstCases, type EvalRow } from '../../../app/lib/sam/eval';
import { parseSegmentEvalArgs, segmentEval } from '../../../app/cli/segment-eval';
import { REPO_ROOT, hasShared, sharedPath } from '../helpers/shared';

describe('cxr-lung-masks evaluation logic', () => {
  it('splits one lung mask into right/left by box, nearer box centre where both or neither hold it; 127 ignored', () => {
    const w = 10, h = 2;
    // row 0: lung everywhere; row 1: ignore everywhere
    const gray = [...new Array(w).fill(255), ...new Array(w).fill(127)];
    const s = splitLungs(gray, w, h, { right_lung: [0, 0, 6, 2], left_lung: [4, 0, 10, 2] });
    expect(Array.from(s.right_lung.slice(0, w))).toEqual([1, 1, 1, 1, 1, 0, 0, 0, 0, 0]); // x=4,5 in both: centres 3 and 7
    expect(Array.from(s.left_lung.slice(0, w))).toEqual([0, 0, 0, 0, 0, 1, 1, 1, 1, 1]);
    expect(Array.from(s.ignore.slice(w))).toEqual(new Array(w).fill(1));
  });
  it('box and centre-click prompts', () => {
    expect(lungPrompt('box', [1, 2, 3, 4])).toEqual({ points: [], box: [1, 2, 3, 4] });
    expect(lungPrompt('center-click', [0, 0, 10, 20]).points).toEqual([{ x: 5, y: 10, label: 1 }]);
  });
  it('boxes.json without a lung box is skipped, not guessed', () => {
    const b = parseBoxes({ a: { right_lung: [0, 0, 1, 1], left_lung: [1, 1, 2, 2] }, b: { left_lung: [0, 0, 1, 1] } });
    expect(Object.keys(b.boxes)).toEqual(['a']);
    expect(b.skipped).toEqual(['b']);
  });
  it('summary, histogram and worst cases', () => {
    const rows: EvalRow[] = [0.9, 0.5, 0.99].map((d, i) => ({ image: `i${i}`, width: 1, height: 1, lungs: { right_lung: { dice: d, iou: d, predictedIou: 0 }, left_lung: { dice: 1 - d / 10, iou: 0, predictedIou: 0 } } }));
    const s = summarizeEval('m', 'box', rows);
    expect(s.per_lung.right_lung.dice.median).toBe(0.9);
    expect(s.per_lung.right_lung.dice.p10).toBeCloseTo(0.58);
    expect(histogram01([0, 0.5, 1], 4)).toEqual([1, 0, 1, 1]);
    expect(worstCases(rows, 1)[0]).toMatchObject({ lung: 'right_lung', dice: 0.5 });
  });
});

/** A folder in the cxr-lung-masks layout with the first `n` real images, plus `extra` files written as given. */
function evalFolder(n: number, extra: Record<string, Buffer | string> = {}, extraBoxes: Record<string, unknown> = {}) {
  const src = sharedPath('data/cxr-lung-masks');
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-segeval-'));
  for (const sub of ['images', 'masks']) fs.mkdirSync(path.join(d, sub));
  const boxes = JSON.parse(fs.readFileSync(path.join(src, 'boxes.json'), 'utf8'));
  const names = fs.readdirSync(path.join(src, 'images')).sort().filter((f) => boxes[f.replace(/\.[^.]+$/, '')]).slice(0, n);
  const kept: Record<string, unknown> = { ...extraBoxes };
  for (const f of names) {
    const name = f.replace(/\.[^.]+$/, '');
    fs.copyFileSync(path.join(src, 'images', f), path.join(d, 'images', f));
    fs.copyFileSync(path.join(src, 'masks', `${name}_mask.png`), path.join(d, 'masks', `${name}_mask.png`));
    kept[name] = boxes[name];
  }
  for (const [rel, body] of Object.entries(extra)) fs.writeFileSync(path.join(d, rel), body);
  fs.writeFileSync(path.join(d, 'boxes.json'), JSON.stringify(kept));
  return { dir: d, names: names.map((f) => f.replace(/\.[^.]+$/, '')), boxes: kept };
}

describe('npm run segment-eval', () => {
  const modelsDir = path.join(REPO_ROOT, 'public/models');
  it('refuses a folder that is not in the layout, naming what is missing', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-segeval-'));
    await expect(segmentEval({ dir: d, prompt: 'box', modelsDir, model: 'tiny-sam', log: () => {} })).rejects.toThrow(/needs images\/, masks\/<name>_mask.png and boxes.json/);
  });
  it.skipIf(!hasShared('data/cxr-lung-masks'))('scores real images per lung through the engine; an unreadable image is a failed row and the run goes on', async () => {
    const first = evalFolder(1);
    const box = (first.boxes as Record<string, unknown>)[first.names[0]];
    // a truncated PNG with a valid mask and boxes: it must fail alone
    const mask = fs.readFileSync(path.join(first.dir, 'masks', `${first.names[0]}_mask.png`));
    const f = evalFolder(2, { 'images/000-broken.png': mask.subarray(0, 60), 'masks/000-broken_mask.png': mask }, { '000-broken': box });
    const lines: string[] = [];
    const { summary, rows } = await segmentEval({ dir: f.dir, prompt: 'center-click', modelsDir, model: 'tiny-sam', log: (l) => lines.push(l) });
    expect(rows.map((r) => r.image)).toEqual(f.names);
    expect(lines[0]).toMatch(/^000-broken\tFAILED: /);
    expect(summary.failed).toHaveLength(1);
    expect(summary.failed[0].image).toBe('000-broken');
    expect(summary.failed[0].message.length).toBeGreaterThan(5);
    expect(summary.per_lung.right_lung.dice.n).toBe(2);
    for (const r of rows) for (const l of Object.values(r.lungs)) expect(l.dice).toBeGreaterThanOrEqual(0);
    expect(summary).toMatchObject({ model: 'tiny-sam', prompt: 'center-click', images: 2, variant: 'fp32', backend: 'wasm' });
  });
  it.skipIf(!hasShared('data/cxr-lung-masks'))('refuses a model file whose sha256 does not match the manifest, before any session', async () => {
    const f = evalFolder(1);
    const md = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-segeval-models-'));
    fs.copyFileSync(path.join(modelsDir, 'manifest.json'), path.join(md, 'manifest.json'));
    fs.mkdirSync(path.join(md, 'tiny-sam'));
    for (const n of fs.readdirSync(path.join(modelsDir, 'tiny-sam'))) fs.copyFileSync(path.join(modelsDir, 'tiny-sam', n), path.join(md, 'tiny-sam', n));
    const enc = path.join(md, 'tiny-sam/image_encoder.onnx');
    const b = fs.readFileSync(enc);
    b[b.length - 1] ^= 0xff; // same size, other bytes
    fs.writeFileSync(enc, b);
    await expect(segmentEval({ dir: f.dir, prompt: 'box', modelsDir: md, model: 'tiny-sam', log: () => {} })).rejects.toThrow(/tiny-sam\/image_encoder\.onnx: sha256 [0-9a-f]{64} does not match the manifest/);
  });
  it('parses its arguments, refusing bad values with the cause', () => {
    expect(parseSegmentEvalArgs(['d', '--dtype', 'int8', '--limit', '3'])).toMatchObject({ dtype: 'int8', limit: 3, prompt: 'box' });
    expect(() => parseSegmentEvalArgs(['d', '--dtype', 'q4'])).toThrow(/--dtype must be fp32, int8 or fp16/);
    expect(() => parseSegmentEvalArgs(['d', '--limit', '0'])).toThrow(/--limit must be a positive integer/);
    expect(() => parseSegmentEvalArgs([])).toThrow(/give the folder/);
  });
});
