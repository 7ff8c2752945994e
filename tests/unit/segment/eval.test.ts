import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { histogram01, lungPrompt, parseBoxes, splitLungs, summarizeEval, worstCases, type EvalRow } from '../../../app/lib/segment/eval';
import { segmentEval } from '../../../app/cli/segment-eval';
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

describe('npm run segment-eval', () => {
  it('refuses a folder that is not in the layout, naming what is missing', async () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-segeval-'));
    await expect(segmentEval({ dir: d, prompt: 'box', modelsDir: path.join(REPO_ROOT, 'public/models'), model: 'tiny-sam', log: () => {} })).rejects.toThrow(/needs images\/, masks\/<name>_mask.png and boxes.json/);
  });
  it.skipIf(!hasShared('data/cxr-lung-masks'))('scores real images per lung (tiny-sam fixture: numbers mean nothing, the plumbing does)', async () => {
    const lines: string[] = [];
    const { summary, rows } = await segmentEval({ dir: sharedPath('data/cxr-lung-masks'), prompt: 'center-click', modelsDir: path.join(REPO_ROOT, 'public/models'), model: 'tiny-sam', limit: 2, log: (l) => lines.push(l) });
    expect(rows.length).toBe(2);
    expect(lines.length).toBe(2);
    expect(summary.per_lung.right_lung.dice.n).toBe(2);
    for (const r of rows) for (const l of Object.values(r.lungs)) expect(l.dice).toBeGreaterThanOrEqual(0);
    expect(summary).toMatchObject({ model: 'tiny-sam', prompt: 'center-click', images: 2 });
  });
});
