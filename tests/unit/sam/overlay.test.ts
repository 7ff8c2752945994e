import { describe, expect, it } from 'vitest';
import { maskBounds, paintMaskOverlay, unionBounds } from '../../../app/lib/sam';

describe('mask overlay painter', () => {
  it('colours mask pixels, later masks win the colour, alpha is the larger one; size mismatches refused', () => {
    const out = new Uint8ClampedArray(3 * 1 * 4).fill(7);
    paintMaskOverlay(out, 3, 1, [
      { mask: [1, 1, 0], color: [10, 20, 30], alpha: 0.5 },
      { mask: [0, 1, 0], color: [200, 100, 50], alpha: 0.2 },
    ]);
    expect(Array.from(out)).toEqual([10, 20, 30, 128, 200, 100, 50, 128, 0, 0, 0, 0]);
    expect(() => paintMaskOverlay(new Uint8ClampedArray(8), 3, 1, [])).toThrow(/holds 8 bytes, 3×1 RGBA needs 12/);
    expect(() => paintMaskOverlay(new Uint8ClampedArray(12), 3, 1, [{ mask: [1], color: [0, 0, 0], alpha: 1 }])).toThrow(/mask 0 has 1 pixels/);
  });

  it('a region holding the masks\' bounds paints the whole paint\'s pixels there and nothing is painted outside it', () => {
    const w = 23, h = 17;
    const a = new Uint8Array(w * h), b = new Uint8Array(w * h);
    for (let y = 3; y < 9; y++) for (let x = 2; x < 11; x++) a[y * w + x] = (x + y) % 3 ? 1 : 0;
    for (let y = 6; y < 15; y++) for (let x = 8; x < 20; x++) b[y * w + x] = 1;
    const masks = [{ mask: a, color: [255, 0, 0] as const, alpha: 0.4 }, { mask: b, color: [0, 0, 255] as const, alpha: 0.7 }];
    const full = paintMaskOverlay(new Uint8ClampedArray(w * h * 4), w, h, masks);
    const r = unionBounds([maskBounds(a, w, h), maskBounds(b, w, h)])!;
    expect(r).toEqual([2, 3, 20, 15]);
    const part = paintMaskOverlay(new Uint8ClampedArray((r[2] - r[0]) * (r[3] - r[1]) * 4), w, h, masks, false, r);
    let outside = 0;
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const px = Array.from(full.subarray((y * w + x) * 4, (y * w + x) * 4 + 4));
        if (x >= r[0] && x < r[2] && y >= r[1] && y < r[3]) {
          const j = ((y - r[1]) * (r[2] - r[0]) + x - r[0]) * 4;
          expect(Array.from(part.subarray(j, j + 4)), `${x},${y}`).toEqual(px);
        } else outside += px[3];
      }
    expect(outside).toBe(0);
    expect(() => paintMaskOverlay(new Uint8ClampedArray(4), w, h, masks, false, [0, 0, 24, 1])).toThrow(/not inside 23×17/);
  });
});
