import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { decodeImageFile, ImageDecodeError, readImageSize, sniffFormat, type Raster } from '../../../app/lib/imaging';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { makePng } from '../helpers/png';
import { hasPython, lacksShared, PYTHON, readBytes, sharedPath } from '../helpers/shared';

async function expectCode(p: Promise<unknown>, code: string): Promise<ImageDecodeError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ImageDecodeError);
    expect((e as ImageDecodeError).code).toBe(code);
    expect((e as ImageDecodeError).message.length).toBeGreaterThan(10);
    return e as ImageDecodeError;
  }
  throw new Error(`expected ImageDecodeError ${code}`);
}

const KERMANY = 'data/kermany-cxr-224/test/NORMAL/IM-0001-0001.jpeg';
const haveKermany = !lacksShared(KERMANY);

describe('decodeImageFile (Node decoders)', () => {
  it.skipIf(!haveKermany)('decodes a real Kermany JPEG to 224×224 RGBA gray', async () => {
    const bytes = readBytes(sharedPath(KERMANY));
    expect(sniffFormat(bytes)?.format).toBe('jpeg');
    expect(readImageSize(bytes, 'jpeg')).toEqual({ width: 224, height: 224 });
    const d = await decodeImageFileNode(bytes);
    expect(d.format).toBe('jpeg');
    expect([d.width, d.height]).toEqual([224, 224]);
    const px = d.raster.data;
    expect(px.length).toBe(224 * 224 * 4);
    let sum = 0;
    for (let i = 0; i < px.length; i += 4) {
      expect(px[i]).toBe(px[i + 1]); // grayscale JPEG → R=G=B
      sum += px[i];
    }
    const mean = sum / (224 * 224);
    expect(mean).toBeGreaterThan(30);
    expect(mean).toBeLessThan(230);
  });

  it.skipIf(!haveKermany || !hasPython)('jpeg-js pixels are within ±2 of Pillow/libjpeg on a real image', async () => {
    const file = sharedPath(KERMANY);
    const out = execFileSync(PYTHON, ['-c', `import sys,numpy as np;from PIL import Image;a=np.asarray(Image.open(sys.argv[1]).convert('L'),dtype=np.uint8);sys.stdout.buffer.write(a.tobytes())`, file]);
    const d = await decodeImageFileNode(readBytes(file));
    let maxDiff = 0, sumDiff = 0;
    for (let i = 0; i < 224 * 224; i++) {
      const diff = Math.abs(d.raster.data[i * 4] - out[i]);
      maxDiff = Math.max(maxDiff, diff);
      sumDiff += diff;
    }
    expect(sumDiff / (224 * 224)).toBeLessThan(0.5);
    expect(maxDiff).toBeLessThanOrEqual(3);
  });

  it.skipIf(!haveKermany)('a truncated JPEG (sliced bytes) → truncated', async () => {
    const bytes = readBytes(sharedPath(KERMANY));
    const e = await expectCode(decodeImageFileNode(bytes.subarray(0, Math.floor(bytes.length / 2))), 'truncated');
    expect(e.message).toMatch(/JPEG is truncated/);
  });

  it('a text file renamed .png → not-an-image', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-h3-'));
    const f = path.join(dir, 'notes.png');
    fs.writeFileSync(f, 'patient notes, definitely not pixels\n');
    const e = await expectCode(decodeImageFileNode(readBytes(f)), 'not-an-image');
    expect(e.message).toBe('This file is not a PNG, JPEG or DICOM image');
    fs.rmSync(dir, { recursive: true });
  });

  it('an empty file → empty', async () => {
    await expectCode(decodeImageFileNode(new Uint8Array(0)), 'empty');
  });

  it('PNG: 8-bit RGB, 16-bit gray, palette; truncated PNG', async () => {
    const w = 5, h = 3;
    const rgba = Buffer.alloc(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([i * 10, 255 - i * 10, 7, 255], i * 4);
    const png8 = PNG.sync.write(Object.assign(new PNG({ width: w, height: h }), { data: rgba }), { colorType: 2 });
    const d8 = await decodeImageFileNode(new Uint8Array(png8));
    expect([d8.width, d8.height]).toEqual([w, h]);
    expect(Array.from(d8.raster.data.subarray(4, 8))).toEqual([10, 245, 7, 255]);

    // 16-bit grayscale (big-endian samples 0x0000, 0x8000, 0xFFFF) → 8-bit
    const png16 = makePng(3, 1, 16, 0, [Uint8Array.from([0, 0, 0x80, 0, 0xff, 0xff])]);
    const d16 = await decodeImageFileNode(png16);
    expect([d16.raster.data[0], d16.raster.data[4], d16.raster.data[8]]).toEqual([0, 128, 255]);
    expect(d16.raster.data[9]).toBe(255);

    // palette
    const pal = makePng(2, 1, 8, 3, [Uint8Array.from([1, 0])], [[10, 20, 30], [200, 100, 50]]);
    const dp = await decodeImageFileNode(pal);
    expect(Array.from(dp.raster.data)).toEqual([200, 100, 50, 255, 10, 20, 30, 255]);

    await expectCode(decodeImageFileNode(new Uint8Array(png8).subarray(0, png8.length - 20)), 'truncated');
  });

  it('too-large: file bytes and pixel count are checked before decoding', async () => {
    const png = PNG.sync.write(Object.assign(new PNG({ width: 100, height: 100 }), { data: Buffer.alloc(100 * 100 * 4, 255) }));
    const bytes = new Uint8Array(png);
    await expectCode(decodeImageFileNode(bytes, { maxPixels: 5000 }), 'too-large');
    await expectCode(decodeImageFileNode(bytes, { maxBytes: 10 }), 'too-large');
    let called = false;
    await expectCode(decodeImageFile(bytes, { maxPixels: 5000, decodeRaster: () => { called = true; return {} as Raster; } }), 'too-large');
    expect(called).toBe(false);
  });

  it('platform decoder failures become corrupt errors', async () => {
    const png = PNG.sync.write(Object.assign(new PNG({ width: 2, height: 2 }), { data: Buffer.alloc(16, 255) }));
    await expectCode(decodeImageFile(new Uint8Array(png), { decodeRaster: () => { throw new Error('InvalidStateError'); } }), 'corrupt');
  });
});
