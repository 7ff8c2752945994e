/**
 * Item 4 of issue 8: 16-bit PNGs at full precision windowed by their stored range, EXIF orientation applied, the same
 * in the app's shared decoder (here with the Node platform decoders, as `npm run label` uses it) and in
 * export-scripts (cxr_export.images.open_rgb, run in .venv as the independent side).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { orientRaster, readExifOrientation, withNeutralOrientation, windowStoredRange, type ExifOrientation } from '../../../app/lib/imaging';
import { hasPython, hasShared, PYTHON, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';

const BUG11 = 'data/bugreports/11-png16-12bit-values';
const BUG12 = 'data/bugreports/12-jpeg-exif-orientation-6';

function red(data: Uint8ClampedArray, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(data[i * 4]);
  return out;
}

describe('16-bit PNG (bug report 11)', () => {
  it.skipIf(!hasShared(BUG11))('is decoded at full precision and windowed by its stored range, with a note', async () => {
    const exp = JSON.parse(fs.readFileSync(sharedPath(BUG11, 'expected.json'), 'utf8'));
    const d = await decodeImageFileNode(readBytes(sharedPath(BUG11, 'image.png')));
    expect(red(d.raster.data, 8)).toEqual(exp.windowed_first);
    expect(d.rasterInfo?.storedRange).toMatchObject({ kind: 'stored-range', bitDepth: 16, min: exp.min, max: exp.max });
    expect(d.rasterInfo?.notes.join(' ')).toContain(`stored range ${exp.min}–${exp.max}`);
    let lo = 255, hi = 0;
    for (let i = 0; i < d.raster.data.length; i += 4) {
      lo = Math.min(lo, d.raster.data[i]);
      hi = Math.max(hi, d.raster.data[i]);
    }
    expect([lo, hi]).toEqual([0, 255]); // not "nearly black" (high byte only) nor clipped white
  });

  it('windowStoredRange: grey and colour channels, alpha dropped, constant image black', () => {
    const { raster, window } = windowStoredRange(Uint16Array.from([100, 9, 300, 9, 200, 9]), 3, 1, 2);
    expect(window).toMatchObject({ min: 100, max: 300 });
    expect(red(raster.data, 3)).toEqual([0, 255, 128]);
    expect(raster.data[3]).toBe(255);
    expect(red(windowStoredRange(Uint16Array.from([5, 5]), 2, 1, 1).raster.data, 2)).toEqual([0, 0]);
  });
});

describe('EXIF orientation (bug report 12)', () => {
  it.skipIf(!hasShared(BUG12))('a JPEG with Orientation 6 is shown and classified upright (48×64), as in the browser', async () => {
    const exp = JSON.parse(fs.readFileSync(sharedPath(BUG12, 'expected.json'), 'utf8'));
    const bytes = readBytes(sharedPath(BUG12, 'image.jpg'));
    expect(readExifOrientation(bytes, 'jpeg').orientation).toBe(6);
    const d = await decodeImageFileNode(bytes);
    expect([d.width, d.height]).toEqual(exp.displayed_size);
    expect(d.rasterInfo?.exifOrientation).toBe(6);
    expect(d.rasterInfo?.notes.join(' ')).toContain('rotate 90° clockwise');
    // the neutralised copy decodes to the stored size, and orientation 6 of it is the result above
    const neutral = withNeutralOrientation(bytes, 'jpeg');
    expect(readExifOrientation(neutral, 'jpeg').orientation).toBe(1);
    const stored = await decodeImageFileNode(neutral);
    expect([stored.width, stored.height]).toEqual(exp.stored_size);
    expect(orientRaster(stored.raster, 6).data).toEqual(d.raster.data);
  });

  it('orientRaster: 8 transforms of a 3×2 raster', () => {
    // stored:  a b c / d e f   (one byte R per pixel)
    const r = { width: 3, height: 2, data: new Uint8ClampedArray([1, 2, 3, 4, 5, 6].flatMap((v) => [v, 0, 0, 255])) };
    const want: Record<ExifOrientation, [number, number, number[]]> = {
      1: [3, 2, [1, 2, 3, 4, 5, 6]],
      2: [3, 2, [3, 2, 1, 6, 5, 4]],
      3: [3, 2, [6, 5, 4, 3, 2, 1]],
      4: [3, 2, [4, 5, 6, 1, 2, 3]],
      5: [2, 3, [1, 4, 2, 5, 3, 6]],
      6: [2, 3, [4, 1, 5, 2, 6, 3]],
      7: [2, 3, [6, 3, 5, 2, 4, 1]],
      8: [2, 3, [3, 6, 2, 5, 1, 4]],
    };
    for (const [o, [w, h, px]] of Object.entries(want)) {
      const out = orientRaster(r, Number(o) as ExifOrientation);
      expect([out.width, out.height, red(out.data, w * h)], `orientation ${o}`).toEqual([w, h, px]);
    }
  });
});

describe.skipIf(!hasPython)('same pixels as export-scripts (cxr_export.images.open_rgb)', () => {
  it('PNG orientations 1–8, 16-bit grey/grey+alpha/RGB/RGBA, 16-bit + EXIF 6: exact; JPEG + EXIF 8: within JPEG decoder tolerance', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'png16-exif-'));
    try {
      execFileSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/fixtures/gen_png16_exif.py'), dir], {
        env: { ...process.env, PYTHONPATH: path.join(REPO_ROOT, 'export-scripts') },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Record<string, { width: number; height: number }>;
      expect(Object.keys(index).length).toBe(14);
      for (const [name, { width, height }] of Object.entries(index)) {
        const d = await decodeImageFileNode(readBytes(path.join(dir, name)));
        expect([d.width, d.height], name).toEqual([width, height]);
        const ref = readBytes(path.join(dir, `${name}.rgb`));
        let maxDiff = 0;
        for (let i = 0, j = 0; i < width * height; i++, j += 3) {
          for (let c = 0; c < 3; c++) maxDiff = Math.max(maxDiff, Math.abs(d.raster.data[i * 4 + c] - ref[j + c]));
        }
        // jpeg-js and libjpeg (Pillow) differ by a few levels in the IDCT; a wrong rotation differs by ~100.
        expect(maxDiff, name).toBeLessThanOrEqual(name.endsWith('.jpg') ? 6 : 0);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
