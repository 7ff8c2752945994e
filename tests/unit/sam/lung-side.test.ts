/**
 * Naming a mask by lung side (app/lib/sam/lung-side.ts) against the annotated masks of ../shared's
 * cxr-lung-masks: each image's true right-lung mask (split by its right_lung box, the dataset's own annotation,
 * which puts the patient's right lung on the image's left) must be named 'right lung', the left one 'left lung',
 * and the union of both (straddling the midline) must get no side.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { rasterToGray } from '../../../app/lib/imaging/raster';
import { isFrontalView, lungSideOf, parseBoxes, splitLungs } from '../../../app/lib/sam';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { hasShared, sharedPath } from '../helpers/shared';

describe('lung side of a mask', () => {
  it('synthetic: share of pixels per half, odd middle column split, lateral views unnamed', () => {
    const w = 5, h = 1;
    expect(lungSideOf([1, 1, 0, 0, 0], w, h)).toBe('right lung');
    expect(lungSideOf([0, 0, 0, 1, 1], w, h)).toBe('left lung');
    expect(lungSideOf([1, 0, 0, 0, 1], w, h)).toBeUndefined();
    expect(lungSideOf([0, 0, 0, 0, 0], w, h)).toBeUndefined();
    // middle column counts half: 1.5 of 2 = 0.75 < 0.8
    expect(lungSideOf([0, 1, 1, 0, 0], w, h)).toBeUndefined();
    expect(lungSideOf([1, 1, 0, 0, 0], w, h, 'LL')).toBeUndefined();
    expect(isFrontalView('AP')).toBe(true);
    expect(isFrontalView('PA ')).toBe(true);
    expect(isFrontalView('LATERAL')).toBe(false);
    expect(isFrontalView(undefined)).toBe(true);
  });

  it.skipIf(!hasShared('data/cxr-lung-masks'))('real annotated masks: right_lung → right lung, left_lung → left lung, both → none', async () => {
    const dir = sharedPath('data/cxr-lung-masks');
    const { boxes } = parseBoxes(JSON.parse(fs.readFileSync(path.join(dir, 'boxes.json'), 'utf8')));
    const names = Object.keys(boxes).sort().slice(0, 12);
    let checked = 0;
    for (const name of names) {
      const mask = await decodeImageFileNode(fs.readFileSync(path.join(dir, 'masks', `${name}_mask.png`)));
      const { width: w, height: h } = mask.raster;
      const t = splitLungs(rasterToGray(mask.raster), w, h, boxes[name]);
      expect(lungSideOf(t.right_lung, w, h), name).toBe('right lung');
      expect(lungSideOf(t.left_lung, w, h), name).toBe('left lung');
      const both = t.right_lung.map((v, i) => v | t.left_lung[i]);
      expect(lungSideOf(both, w, h), name).toBeUndefined();
      checked++;
    }
    expect(checked).toBe(names.length);
  });
});
