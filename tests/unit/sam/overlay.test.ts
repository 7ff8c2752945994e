import { describe, expect, it } from 'vitest';
import { paintMaskOverlay } from '../../../app/lib/sam';

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
});
