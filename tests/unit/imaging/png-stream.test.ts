/**
 * Item 7 of issue 8: very large PNGs are decoded row by row and box-averaged (bounded memory). Checked against
 * export-scripts' numpy implementation (cxr_export.images) on files written by Pillow and pypng, and, at factor 1,
 * against the regular decoders.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { decodePngStreaming, downsampleFactor, LARGE_IMAGE_MAX_PIXELS } from '../../../app/lib/imaging';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { hasPython, PYTHON, readBytes, REPO_ROOT } from '../helpers/shared';

function rgbOf(data: Uint8ClampedArray): Uint8Array {
  const n = data.length / 4;
  const out = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) out.set(data.subarray(i * 4, i * 4 + 3), i * 3);
  return out;
}

it('downsampleFactor brings any size under the limit with the smallest integer factor', () => {
  expect(downsampleFactor(4096, 4096)).toBe(1);
  expect(downsampleFactor(10_000, 10_000)).toBe(3);
  expect(downsampleFactor(4097, 4096)).toBe(2);
  for (const [w, h] of [[10_000, 10_000], [30_000, 2_000], [65_535, 1]]) {
    const f = downsampleFactor(w, h);
    expect(Math.ceil(w / f) * Math.ceil(h / f)).toBeLessThanOrEqual(LARGE_IMAGE_MAX_PIXELS);
    expect(f === 1 || Math.ceil(w / (f - 1)) * Math.ceil(h / (f - 1)) > LARGE_IMAGE_MAX_PIXELS).toBe(true);
  }
});

describe.skipIf(!hasPython)('decodePngStreaming = export-scripts (cxr_export.images)', () => {
  it('every colour type and depth at factors 1 and 3; factor 1 equals the regular decoder; a 4100² PNG end to end', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'png-stream-'));
    try {
      execFileSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/fixtures/gen_png_stream.py'), dir], {
        env: { ...process.env, PYTHONPATH: path.join(REPO_ROOT, 'export-scripts') },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as Record<string, [number, number]>;
      const names = fs.readdirSync(dir).filter((f) => f.endsWith('.png'));
      expect(names.length).toBe(11);
      for (const name of names) {
        const bytes = readBytes(path.join(dir, name));
        for (const f of [1, 3]) {
          const got = decodePngStreaming(bytes, f);
          expect([got.raster.width, got.raster.height], `${name} f${f}`).toEqual(index[`${name}.f${f}`]);
          const ref = readBytes(path.join(dir, `${name}.f${f}.rgb`));
          expect(Buffer.from(rgbOf(got.raster.data)).equals(Buffer.from(ref)), `${name} f${f}`).toBe(true);
        }
        const regular = await decodeImageFileNode(bytes);
        // RGB compared: pngjs keeps the alpha channel, the app's models read RGB only
        expect(Buffer.from(rgbOf(decodePngStreaming(bytes, 1).raster.data)).equals(Buffer.from(rgbOf(regular.raster.data))), `${name} vs regular decoder`).toBe(true);
      }
      const big = readBytes(path.join(dir, 'large.png.big'));
      const d = await decodeImageFileNode(big);
      expect(d.rasterInfo?.downsampled).toEqual({ factor: 2, sourceWidth: 4100, sourceHeight: 4100 });
      expect([d.width, d.height]).toEqual(index.large);
      expect(Buffer.from(rgbOf(d.raster.data)).equals(Buffer.from(readBytes(path.join(dir, 'large.rgb'))))).toBe(true);
      expect(d.rasterInfo?.notes[0]).toContain('4100×4100 PNG averaged 2×2 while decoding to 2050×2050');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
