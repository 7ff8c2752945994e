/**
 * `npm run segment-eval -- DIR --model hf:owner/name --hub URL` (issue 20.2): a SAM repo in the transformers.js layout,
 * served by scripts/hub-server.mjs, is read, cached (sha256-checked) and evaluated through the same segment engine as
 * the manifest's models. The reference is PyTorch: the fixture's golden masks (transformers SamModel +
 * post_process_masks) for a click at (20, 24), which is the centre of the right-lung box below, give the expected
 * Dice against a known truth rectangle and the expected predicted IoU.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHubServer, type RunningHubServer } from '../../../scripts/hub-server.mjs';
import { segmentEval } from '../../../app/cli/segment-eval';
import { encodePng } from '../../../app/lib/imaging/png-encode';
import { ensureHubFixtures, HUB_FIXTURES_DIR } from '../helpers/hub-fixtures';
import { REPO_ROOT } from '../helpers/shared';

let hub: RunningHubServer;
let tmp: string;
const W = 64;
const H = 48;
const inTruth = (x: number, y: number) => x >= 5 && x <= 33 && y >= 5 && y <= 45;

beforeAll(async () => {
  if (!ensureHubFixtures()) throw new Error(`${HUB_FIXTURES_DIR} cannot be written without PyTorch in .venv (npm run setup)`);
  hub = await createHubServer({ root: HUB_FIXTURES_DIR, port: 0 });
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-hub-segeval-'));
  fs.mkdirSync(path.join(tmp, 'images'));
  fs.mkdirSync(path.join(tmp, 'masks'));
  fs.copyFileSync(path.join(HUB_FIXTURES_DIR, '_goldens', 'image-64x48.png'), path.join(tmp, 'images', 'a.png'));
  const truth = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) truth[y * W + x] = inTruth(x, y) ? 255 : 0;
  fs.writeFileSync(path.join(tmp, 'masks', 'a_mask.png'), encodePng(truth, W, H, 1));
  // right-lung box centred on the golden click (20, 24); every truth pixel centre (x + 0.5) is nearer its centre (20)
  // than the left box's (50), so splitLungs gives the whole rectangle to the right lung
  fs.writeFileSync(path.join(tmp, 'boxes.json'), JSON.stringify({ a: { right_lung: [10, 14, 30, 34], left_lung: [40, 10, 60, 40] } }));
}, 300_000);
afterAll(async () => {
  await hub?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe('segment-eval with a Hub model', () => {
  it('hf:cxr-fixtures/tiny-sam, centre clicks: the right lung\'s Dice and predicted IoU are PyTorch\'s; files cached and checked', async () => {
    process.env.CXR_HUB_CACHE = path.join(tmp, 'cache');
    const g = JSON.parse(fs.readFileSync(path.join(HUB_FIXTURES_DIR, '_goldens', 'tiny-sam.json'), 'utf8'));
    const point = g.cases.point;
    expect(point.prompts.points).toEqual([[20, 24]]);
    const iou: number[] = point.outputs.iou_scores.data;
    const best = iou.indexOf(Math.max(...iou));
    const logits: number[] = point.outputs.masks.data.slice(best * W * H, (best + 1) * W * H);
    let inter = 0;
    let pred = 0;
    let truth = 0;
    let uncertain = 0;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const v = logits[y * W + x];
        if (Math.abs(v) < 1e-4) uncertain++;
        if (v > 0) pred++;
        if (inTruth(x, y)) truth++;
        if (v > 0 && inTruth(x, y)) inter++;
      }
    }
    const dice = (2 * inter) / (pred + truth);
    expect(pred).toBeGreaterThan(0);

    const { summary, rows } = await segmentEval({ dir: tmp, prompt: 'center-click', model: 'hf:cxr-fixtures/tiny-sam', hubBase: hub.url, modelsDir: path.join(REPO_ROOT, 'public', 'models'), dtype: 'fp32', threads: 1, log: () => {} });
    const right = rows[0].lungs.right_lung;
    console.log(`hub tiny-sam via segment-eval: right-lung Dice ${right.dice.toFixed(4)} (PyTorch ${dice.toFixed(4)}), |ΔIoU| ${Math.abs(right.predictedIou - iou[best]).toExponential(2)}`);
    // a pixel whose PyTorch logit is within 1e-4 of 0 may fall either side
    expect(Math.abs(right.dice - dice)).toBeLessThanOrEqual((2 * uncertain) / (pred + truth) + 1e-9);
    expect(Math.abs(right.predictedIou - iou[best])).toBeLessThan(1e-4);
    expect(summary.weights).toBe('external');
    expect(summary.variant).toBe('fp32');
    const cached = fs.readdirSync(path.join(tmp, 'cache'), { recursive: true }) as string[];
    expect(cached.some((f) => f.endsWith(path.join('onnx', 'vision_encoder.onnx')))).toBe(true);
  }, 300_000);

  it('a repo of another family is named, not run', async () => {
    await expect(segmentEval({ dir: tmp, prompt: 'center-click', model: 'hf:cxr-fixtures/tiny-vit-cxr', hubBase: hub.url, modelsDir: path.join(REPO_ROOT, 'public', 'models'), log: () => {} })).rejects.toThrow(/classifier model, not SAM-family/);
  }, 120_000);
});
