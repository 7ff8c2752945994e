/**
 * The DICOM kinds of ../shared/data/bugreports (see its README), each against its expected.json and against pydicom's
 * reading of the same file: RLE with a 0xFFFFFFFF Sequence Delimitation Item, implicit VR with a private
 * undefined-length SQ, signed 12-bit with garbage high bits, MONOCHROME1 16-bit with a window, 8-bit OW under
 * Explicit VR Big Endian, multi-frame RLE with an empty Basic Offset Table, deflated explicit VR LE.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { decodeDicomAsync, renderGray } from '../../../app/lib/imaging';
import { nodeWasmLoader } from '../../../app/platform/node/decode';
import { comparePixels } from '../helpers/compare-dicom';
import { pydicomReferences } from '../helpers/pydicom';
import { hasShared, lacksShared, missingReason, readBytes, sharedPath } from '../helpers/shared';

const DIR = 'data/bugreports';
const FOLDERS = [
  '01-rle-seqdelim-undefined-length', '03-implicit-private-undefined-length-sq', '04-signed-12bit-garbage-high-bits',
  '05-monochrome1-16bit-window', '07-bigendian-8bit-OW', '08-multiframe-rle-empty-bot', '09-deflated-explicit-le',
];

describe.skipIf(lacksShared(DIR))(`DICOM bug reports ${hasShared(DIR) ? '' : missingReason(DIR)}`, () => {
  let refs: ReturnType<typeof pydicomReferences> | undefined;
  const ref = (folder: string) => {
    refs ??= pydicomReferences(FOLDERS.map((f) => sharedPath(DIR, f, 'image.dcm')));
    return refs[FOLDERS.indexOf(folder)];
  };
  const expected = (folder: string) => JSON.parse(fs.readFileSync(sharedPath(DIR, folder, 'expected.json'), 'utf8')) as Record<string, unknown>;

  for (const folder of FOLDERS) {
    it(`${folder}: decodes as expected.json and equal to pydicom`, async () => {
      const bytes = readBytes(sharedPath(DIR, folder, 'image.dcm'));
      const exp = expected(folder);
      const img = await decodeDicomAsync(bytes, { loadWasm: nodeWasmLoader });
      const first = (exp.first ?? exp.first_values) as number[] | undefined;
      if (first) expect(Array.from(img.pixels.subarray(0, first.length))).toEqual(first);
      const min = (exp.min ?? exp.frame1_min) as number | undefined;
      const max = (exp.max ?? exp.frame1_max) as number | undefined;
      if (min !== undefined) expect(img.range.min).toBe(min);
      if (max !== undefined) expect(img.range.max).toBe(max);
      const cmp = await comparePixels(bytes, ref(folder));
      expect(cmp.worst, `${folder}: ${cmp.what} vs pydicom`).toBe(0);
    });
  }

  it('01: the malformed delimiter is named in a note, not called "truncated"', async () => {
    const img = await decodeDicomAsync(readBytes(sharedPath(DIR, FOLDERS[0], 'image.dcm')), { loadWasm: nodeWasmLoader });
    expect(img.notes.join(' ')).toMatch(/Sequence Delimitation Item in \(7FE0,0010\) carries length 0xFFFFFFFF instead of 0/);
  });

  it('04: the full-range window spans the signed 12-bit range exactly (min → 0, max → 255)', async () => {
    const img = await decodeDicomAsync(readBytes(sharedPath(DIR, FOLDERS[2], 'image.dcm')), { loadWasm: nodeWasmLoader });
    const exp = expected(FOLDERS[2]).auto_window as { center: number; width: number };
    // expected.json says C 0.5 / W 4096; PS3.3 C.11.2.1.2.1 solved for min→0 and max→255 gives C 0 / W 4096 (both
    // render these pixels identically after rounding): same width, centre within half a value.
    expect(img.window.width).toBe(exp.width);
    expect(Math.abs(img.window.center - exp.center)).toBeLessThanOrEqual(0.5);
    const g = renderGray(img);
    let lo = 255, hi = 0;
    for (const v of g) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    expect([lo, hi]).toEqual([0, 255]);
  });

  it('05: MONOCHROME1 display: value 0 white, the first values as expected', async () => {
    const img = await decodeDicomAsync(readBytes(sharedPath(DIR, FOLDERS[3], 'image.dcm')), { loadWasm: nodeWasmLoader });
    const disp = expected(FOLDERS[3]).first_display as number[];
    expect(Array.from(renderGray(img).subarray(0, disp.length))).toEqual(disp);
  });

  it('07: 8-bit OW big endian pixels come out un-swapped, with a note', async () => {
    const img = await decodeDicomAsync(readBytes(sharedPath(DIR, FOLDERS[4], 'image.dcm')), { loadWasm: nodeWasmLoader });
    expect(img.notes.join(' ')).toMatch(/byte pairs swapped back/);
  });

  it('08: both frames decode and equal pydicom (frame picker)', async () => {
    const cmp = await comparePixels(readBytes(sharedPath(DIR, FOLDERS[5], 'image.dcm')), ref(FOLDERS[5]));
    expect(cmp.images.length).toBe(2);
    expect(cmp.worst).toBe(0);
    expect(cmp.images[1].frameIndex).toBe(1);
    expect(Array.from(cmp.images[1].pixels.subarray(0, 4))).not.toEqual(Array.from(cmp.images[0].pixels.subarray(0, 4)));
  });
});
