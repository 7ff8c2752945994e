/**
 * The region-limited mask upscale (app/lib/sam/mask-upscale.ts) against SAM's full two-step upscale and threshold
 * (postprocess.ts upscaleMaskLogits + thresholdLogits, itself checked against PyTorch's F.interpolate goldens):
 * the same pixels and the mask's true bounds, on synthetic logit maps (blobs, noise, a single positive cell at each
 * corner, positives so small that the float32 logit rounds to 0, all negative) over upscaling and downscaling
 * geometries, and on lung-sam's real decodes of held-out X-rays when the model and ../shared are here.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { longestSideShape, maskAreaIn, maskBounds, thresholdLogits, unionBounds, upscaleMask, upscaleMaskLogits, lungPrompt, parseBoxes, LUNGS, type FrameGeometry } from '../../../app/lib/sam';
import { parseManifest, findModel } from '../../../app/lib/models/manifest';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { openSamPipeline } from '../../../app/platform/node/engines';
import { REPO_ROOT, hasShared, sharedPath } from '../helpers/shared';

/** Bounds by a plain scan of a fresh copy (not the remembered ones). */
function scanBounds(mask: Uint8Array, w: number, h: number) {
  return maskBounds(Uint8Array.from(mask), w, h);
}

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function logitMaps(m: number, seed: number): [string, Float32Array][] {
  const r = rng(seed);
  const blob = new Float32Array(m * m);
  const cx = m * (0.2 + 0.5 * r());
  const cy = m * (0.2 + 0.5 * r());
  for (let y = 0; y < m; y++) for (let x = 0; x < m; x++) blob[y * m + x] = m * 0.15 - Math.hypot(x - cx, y - cy) + (r() - 0.5) * 2;
  const noise = Float32Array.from({ length: m * m }, () => (r() - 0.7) * 8);
  const corner = (i: number) => {
    const a = new Float32Array(m * m).fill(-3);
    a[i] = 5;
    return a;
  };
  const tiny = new Float32Array(m * m); // zeros: not foreground, and they add nothing to the tiny positives
  tiny[Math.floor(m * m / 2) + 3] = 3e-45; // positive, but its upscaled float32 logit may round to 0
  tiny[7] = 1e-3;
  return [
    ['blob', blob],
    ['noise', noise],
    ['corner top-left', corner(0)],
    ['corner bottom-right', corner(m * m - 1)],
    ['corner top-right', corner(m - 1)],
    ['tiny positives', tiny],
    ['all negative', new Float32Array(m * m).fill(-2)],
  ];
}

describe('region-limited mask upscale', () => {
  const cases: [number, FrameGeometry][] = [
    [256, longestSideShape(1024, 1024, 256)],
    [256, longestSideShape(779, 663, 256)],
    [256, longestSideShape(1024, 459, 256)],
    [256, longestSideShape(100, 80, 256)], // a small image: the second resize shrinks
    [64, longestSideShape(1500, 2000, 256)],
    [16, longestSideShape(37, 91, 64)],
  ];
  it('gives the full upscale-and-threshold pixels and the true bounds', () => {
    let n = 0;
    for (const [m, g] of cases) {
      for (const [name, low] of logitMaps(m, m * 31 + g.origW)) {
        const ref = thresholdLogits(upscaleMaskLogits(low, m, g));
        const got = upscaleMask(low, m, g);
        const label = `${name} m=${m} ${g.origW}x${g.origH}`;
        expect(got.mask.length, label).toBe(ref.length);
        let diff = 0;
        for (let i = 0; i < ref.length; i++) diff += ref[i] !== got.mask[i] ? 1 : 0;
        expect(diff, label).toBe(0);
        expect(got.bounds, label).toEqual(scanBounds(ref, g.origW, g.origH));
        // the page reads the remembered bounds, not a scan
        expect(maskBounds(got.mask, g.origW, g.origH)).toBe(got.bounds);
        expect(maskAreaIn(got.mask, g.origW, g.origH), label).toBe(ref.reduce((a, v) => a + v, 0));
        n++;
      }
    }
    expect(n).toBe(cases.length * 7);
    expect(() => upscaleMask(new Float32Array(10), 4, cases[0][1])).toThrow(/10 values, expected 4×4/);
  });

  it('unions bounds, skipping empty masks', () => {
    expect(unionBounds([null, [2, 3, 5, 6], [0, 4, 3, 9]])).toEqual([0, 3, 5, 9]);
    expect(unionBounds([null, null])).toBeNull();
  });

  const MODELS = path.join(REPO_ROOT, 'public/models');
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
  const entry = findModel(manifest, 'lung-sam');
  const ready = !!entry && hasShared('data/cxr-lung-masks');
  it.skipIf(!ready)('lung-sam: the decode\'s masks equal the thresholded full-size logits (box and click prompts)', async () => {
    const dir = sharedPath('data/cxr-lung-masks');
    const { boxes } = parseBoxes(JSON.parse(fs.readFileSync(path.join(dir, 'boxes.json'), 'utf8')));
    const pipe = await openSamPipeline(MODELS, entry!);
    const files = fs.readdirSync(path.join(dir, 'images')).sort().filter((f) => boxes[f.replace(/\.[^.]+$/, '')]).slice(0, 3);
    let pixels = 0;
    for (const f of files) {
      const img = await decodeImageFileNode(fs.readFileSync(path.join(dir, 'images', f)));
      const { width: w, height: h } = img.raster;
      const emb = await pipe.encode(img.raster);
      for (const lung of LUNGS) {
        for (const kind of ['box', 'center-click'] as const) {
          const prompt = lungPrompt(kind, boxes[f.replace(/\.[^.]+$/, '')][lung]);
          const fast = await pipe.decode(emb, prompt, { masks: 'best' });
          const full = await pipe.decode(emb, prompt, { logits: true });
          const ref = thresholdLogits(full.logits![fast.best]);
          expect(Array.from(fast.masks[fast.best]), `${f} ${lung} ${kind}`).toEqual(Array.from(ref));
          expect(fast.bounds[fast.best]).toEqual(scanBounds(ref, w, h));
          pixels += ref.reduce((s, v) => s + v, 0);
        }
      }
    }
    expect(pixels).toBeGreaterThan(0);
  }, 120_000);
});
