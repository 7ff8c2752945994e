import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import jpeg from 'jpeg-js';
import {
  decodeDicom, decodeRleFrame, ImageDecodeError, dicomToRaster, applyWindow, windowValue, autoWindow, sniffFormat,
} from '../../../app/lib/imaging';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { grayAttrs, writeDicom } from '../helpers/dicom-writer';
import { hasShared, lacksShared, missingReason, readBytes, sharedPath } from '../helpers/shared';

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_BE = '1.2.840.10008.1.2.2';
const DEFLATED = '1.2.840.10008.1.2.1.99';
const RLE = '1.2.840.10008.1.2.5';

function expectCode(fn: () => unknown, code: string): ImageDecodeError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ImageDecodeError);
    expect((e as ImageDecodeError).code).toBe(code);
    return e as ImageDecodeError;
  }
  throw new Error(`expected ImageDecodeError ${code}`);
}

const ramp16 = (n: number, f: (i: number) => number) => Uint16Array.from({ length: n }, (_, i) => f(i));

describe('real DICOM files (../shared/data/dicom)', () => {
  const nih = 'data/dicom/nih_cxr14_dx_1024.dcm';
  it.skipIf(lacksShared(nih))(`NIH CXR14 1024² MONOCHROME2 matches its DICOM-JSON header ${hasShared(nih) ? '' : missingReason(nih)}`, () => {
    const img = decodeDicom(readBytes(sharedPath(nih)));
    const header = JSON.parse(fs.readFileSync(sharedPath('data/dicom/nih_cxr14_dx_1024.json'), 'utf8')) as Record<string, { Value?: unknown[] }>;
    const v = (t: string) => header[t]?.Value?.[0];
    expect(img.width).toBe(v('00280011'));
    expect(img.height).toBe(v('00280010'));
    expect(img.photometric).toBe(v('00280004'));
    expect(img.metadata.BitsAllocated).toBe(v('00280100'));
    expect(img.metadata.BitsStored).toBe(v('00280101'));
    expect(img.metadata.HighBit).toBe(v('00280102'));
    expect(img.metadata.PixelRepresentation).toBe(v('00280103'));
    expect(img.metadata.Modality).toBe(v('00080060'));
    expect(img.metadata.SOPClassUID).toBe(v('00080016'));
    expect(img.metadata.StudyDescription).toBe(v('00081030'));
    expect(img.metadata.TransferSyntaxUID).toBe('1.2.840.10008.1.2');
    // identifying attributes are separated from the public ones
    expect(img.identifying.PatientID).toBe(v('00100020'));
    expect(img.identifying.PatientName).toBe((v('00100010') as { Alphabetic: string }).Alphabetic);
    expect(img.identifying.SOPInstanceUID).toBe(v('00080018'));
    expect(JSON.stringify(img.metadata)).not.toContain(String(v('00100020')));
    expect(img.pixels.length).toBe(1024 * 1024);
    expect(img.range.min).toBeGreaterThanOrEqual(0);
    expect(img.range.max).toBeLessThanOrEqual(255);
    expect(img.range.max - img.range.min).toBeGreaterThan(100); // a real radiograph, not a flat image
    // 8-bit implicit VR LE with Pixel Data last: the modality values are the file's last 1024² bytes
    const raw = readBytes(sharedPath(nih));
    const off = raw.length - 1024 * 1024;
    let mismatches = 0;
    for (let i = 0; i < 1024 * 1024; i++) if (img.pixels[i] !== raw[off + i]) mismatches++;
    expect(mismatches).toBe(0);
    const r = dicomToRaster(img);
    expect(r.data.length).toBe(1024 * 1024 * 4);
  });

  const ot = 'data/dicom/non_cxr_control_OT_512.dcm';
  it.skipIf(lacksShared(ot))('non-CXR control decodes and reports its modality', async () => {
    const d = await decodeImageFileNode(readBytes(sharedPath(ot)));
    expect(d.format).toBe('dicom');
    expect(d.dicom!.metadata.Modality).toBe('OT');
    expect(d.raster.width * d.raster.height).toBeGreaterThan(0);
  });
});

describe('synthetic DICOM', () => {
  it('explicit VR LE 16-bit with rescale and multi-valued window (takes first)', () => {
    const px = ramp16(6, (i) => i * 100);
    const bytes = writeDicom({
      transferSyntax: EXPLICIT_LE,
      elements: grayAttrs({ rows: 2, cols: 3, bitsAllocated: 16, bitsStored: 12, slope: 2, intercept: -1024, wc: '-500\\40', ww: '1000\\400' }),
      pixels: { data: px, bitsAllocated: 16 },
    });
    const img = decodeDicom(bytes);
    expect([img.width, img.height]).toEqual([3, 2]);
    expect(Array.from(img.pixels)).toEqual([0, 100, 200, 300, 400, 500].map((x) => x * 2 - 1024));
    expect(img.window).toEqual({ center: -500, width: 1000 });
    expect(img.windowSource).toBe('file');
    expect(img.metadata.RescaleSlope).toBe(2);
    expect(img.identifying.PatientName).toBe('Doe^Jane');
    expect(img.metadata).not.toHaveProperty('PatientName');
  });

  it('BitsStored/HighBit masking ignores overlay bits above the stored bits', () => {
    // 12 bits stored in 16, high bit 11: 0xF123 → 0x123
    const bytes = writeDicom({ transferSyntax: EXPLICIT_LE, elements: grayAttrs({ rows: 1, cols: 2, bitsAllocated: 16, bitsStored: 12, highBit: 11 }), pixels: { data: Uint16Array.from([0xf123, 0x0fff]), bitsAllocated: 16 } });
    expect(Array.from(decodeDicom(bytes).pixels)).toEqual([0x123, 0xfff]);
  });

  it('signed 16-bit (PixelRepresentation 1), incl. signed 12-bit sign extension', () => {
    const b16 = writeDicom({ transferSyntax: EXPLICIT_LE, elements: grayAttrs({ rows: 1, cols: 3, bitsAllocated: 16, signed: true }), pixels: { data: Int16Array.from([-1000, 0, 1000]), bitsAllocated: 16 } });
    expect(Array.from(decodeDicom(b16).pixels)).toEqual([-1000, 0, 1000]);
    const b12 = writeDicom({ transferSyntax: EXPLICIT_LE, elements: grayAttrs({ rows: 1, cols: 2, bitsAllocated: 16, bitsStored: 12, signed: true }), pixels: { data: Uint16Array.from([0x0800, 0x07ff]), bitsAllocated: 16 } });
    expect(Array.from(decodeDicom(b12).pixels)).toEqual([-2048, 2047]);
  });

  it('8-bit MONOCHROME1 is inverted on display; auto window from min/max', () => {
    const bytes = writeDicom({ transferSyntax: EXPLICIT_LE, elements: grayAttrs({ rows: 1, cols: 3, bitsAllocated: 8, photometric: 'MONOCHROME1' }), pixels: { data: Uint8Array.from([0, 128, 255, 0]), bitsAllocated: 8 } });
    const img = decodeDicom(bytes);
    expect(img.photometric).toBe('MONOCHROME1');
    expect(img.windowSource).toBe('auto');
    expect(img.window).toEqual({ center: 128, width: 256 });
    const r = dicomToRaster(img);
    expect([r.data[0], r.data[4], r.data[8]]).toEqual([255, 127, 0]);
    expect(r.data[3]).toBe(255);
  });

  it('implicit VR LE', () => {
    const bytes = writeDicom({ transferSyntax: IMPLICIT_LE, elements: grayAttrs({ rows: 2, cols: 2, bitsAllocated: 16 }), pixels: { data: ramp16(4, (i) => i * 1000), bitsAllocated: 16 } });
    expect(Array.from(decodeDicom(bytes).pixels)).toEqual([0, 1000, 2000, 3000]);
  });

  it('explicit VR big endian', () => {
    const bytes = writeDicom({ transferSyntax: EXPLICIT_BE, elements: grayAttrs({ rows: 2, cols: 2, bitsAllocated: 16, wc: '1500', ww: '3000' }), pixels: { data: ramp16(4, (i) => i * 1000 + 1), bitsAllocated: 16 } });
    const img = decodeDicom(bytes);
    expect(img.metadata.TransferSyntaxName).toBe('Explicit VR Big Endian');
    expect([img.width, img.height]).toEqual([2, 2]);
    expect(Array.from(img.pixels)).toEqual([1, 1001, 2001, 3001]);
    expect(img.window.center).toBe(1500);
  });

  it('deflated explicit VR LE (fflate inflate)', () => {
    const bytes = writeDicom({ transferSyntax: DEFLATED, elements: grayAttrs({ rows: 4, cols: 4, bitsAllocated: 16 }), pixels: { data: ramp16(16, (i) => i * 7), bitsAllocated: 16 } });
    const img = decodeDicom(bytes);
    expect(Array.from(img.pixels)).toEqual(Array.from({ length: 16 }, (_, i) => i * 7));
  });

  it('preamble-less files: with meta header, and a bare data set (implicit and explicit)', () => {
    const px = ramp16(4, (i) => i + 10);
    for (const [meta, ts] of [[true, EXPLICIT_LE], [false, IMPLICIT_LE], [false, EXPLICIT_LE]] as const) {
      const bytes = writeDicom({ transferSyntax: ts, preamble: false, meta, elements: grayAttrs({ rows: 2, cols: 2, bitsAllocated: 16 }), pixels: { data: px, bitsAllocated: 16 } });
      expect(sniffFormat(bytes)).toEqual({ format: 'dicom', dicomPreamble: false });
      expect(Array.from(decodeDicom(bytes).pixels)).toEqual([10, 11, 12, 13]);
    }
  });

  it('JPEG 2000 is rejected with unsupported-transfer-syntax naming the syntax', () => {
    const bytes = writeDicom({ transferSyntax: '1.2.840.10008.1.2.4.90', elements: grayAttrs({ rows: 2, cols: 2, bitsAllocated: 16 }), fragments: [Uint8Array.from([0xff, 0x4f, 0xff, 0x51, 1, 2, 3, 4])] });
    const e = expectCode(() => decodeDicom(bytes), 'unsupported-transfer-syntax');
    expect(e.message).toContain('JPEG 2000');
    expect(e.message).toContain('1.2.840.10008.1.2.4.90');
    expect(e.details).toMatchObject({ transferSyntaxUID: '1.2.840.10008.1.2.4.90' });
  });

  it('JPEG baseline inside DICOM is decoded through the platform JPEG decoder (jpeg-js in Node)', async () => {
    const w = 16, h = 8;
    const rgba = new Uint8Array(w * h * 4);
    for (let i = 0; i < w * h; i++) rgba.set([i * 2, i * 2, i * 2, 255], i * 4);
    const jpg = new Uint8Array(jpeg.encode({ width: w, height: h, data: rgba }, 95).data);
    const bytes = writeDicom({ transferSyntax: '1.2.840.10008.1.2.4.50', elements: grayAttrs({ rows: h, cols: w, bitsAllocated: 8 }), fragments: [jpg] });
    expectCode(() => decodeDicom(bytes), 'unsupported-transfer-syntax'); // without a codec
    const d = await decodeImageFileNode(bytes);
    expect(d.format).toBe('dicom');
    expect([d.width, d.height]).toEqual([w, h]);
    let maxDiff = 0;
    for (let i = 0; i < w * h; i++) maxDiff = Math.max(maxDiff, Math.abs(d.dicom!.pixels[i] - i * 2));
    expect(maxDiff).toBeLessThanOrEqual(8); // lossy
    expect(d.dicom!.notes.join(' ')).toMatch(/platform JPEG decoder/);
    // 12-bit extended JPEG cannot go through 8-bit platform decoders
    const b12 = writeDicom({ transferSyntax: '1.2.840.10008.1.2.4.51', elements: grayAttrs({ rows: h, cols: w, bitsAllocated: 16, bitsStored: 12 }), fragments: [jpg] });
    await expect(decodeImageFileNode(b12)).rejects.toMatchObject({ code: 'unsupported-transfer-syntax' });
  });

  it('RLE Lossless 16-bit decodes (PackBits byte planes, MSB first)', () => {
    const values = [0x0102, 0x0102, 0x0102, 0x0a0b];
    const hi = values.map((v) => v >> 8), lo = values.map((v) => v & 255);
    // plane hi: literal run of 4; plane lo: replicate 0x02 3 times (-2), then literal 1 byte (0)
    const segHi = Uint8Array.from([3, ...hi]);
    const segLo = Uint8Array.from([0xfe, 0x02, 0x00, lo[3]]);
    const header = new Uint8Array(64);
    const dv = new DataView(header.buffer);
    dv.setUint32(0, 2, true);
    dv.setUint32(4, 64, true);
    dv.setUint32(8, 64 + segHi.length, true);
    const frame = Uint8Array.from([...header, ...segHi, ...segLo]);
    expect(decodeRleFrame(frame, 4).map((p) => Array.from(p))).toEqual([hi, lo]);
    const bytes = writeDicom({ transferSyntax: RLE, elements: grayAttrs({ rows: 2, cols: 2, bitsAllocated: 16 }), fragments: [frame] });
    expect(Array.from(decodeDicom(bytes).pixels)).toEqual(values);
  });

  it('RGB (SamplesPerPixel 3, planar 0 and 1)', () => {
    for (const planar of [0, 1]) {
      const rgb = planar ? [255, 0, 10, 0, 255, 20] : [255, 0, 10, 0, 255, 20].map((_, i, a) => a[(i % 3) * 2 + Math.floor(i / 3)]);
      // planar 1 data: R plane [255,0], G plane [10,0]... build explicitly instead
      const pixels = planar ? Uint8Array.from([255, 0, 0, 255, 10, 20]) : Uint8Array.from([255, 0, 10, 0, 255, 20]);
      void rgb;
      const els = grayAttrs({ rows: 1, cols: 2, bitsAllocated: 8, photometric: 'RGB' }).filter((e) => e.tag !== 0x00280002);
      els.push({ tag: 0x00280002, vr: 'US', value: [3] }, { tag: 0x00280006, vr: 'US', value: [planar] });
      const img = decodeDicom(writeDicom({ transferSyntax: EXPLICIT_LE, elements: els, pixels: { data: pixels, bitsAllocated: 8 } }));
      expect(Array.from(img.rgb!)).toEqual([255, 0, 10, 0, 255, 20]);
      const r = dicomToRaster(img);
      expect(Array.from(r.data.subarray(0, 8))).toEqual([255, 0, 10, 255, 0, 255, 20, 255]);
    }
  });

  it('multi-frame: first frame with a note', () => {
    const els = grayAttrs({ rows: 1, cols: 2, bitsAllocated: 8 });
    els.push({ tag: 0x00280008, vr: 'IS', value: '3' });
    const img = decodeDicom(writeDicom({ transferSyntax: EXPLICIT_LE, elements: els, pixels: { data: Uint8Array.from([1, 2, 3, 4, 5, 6]), bitsAllocated: 8 } }));
    expect(Array.from(img.pixels)).toEqual([1, 2]);
    expect(img.notes.join(' ')).toMatch(/3 frames/);
  });

  it('errors: no pixel data, truncated pixel data, too large', () => {
    expectCode(() => decodeDicom(writeDicom({ transferSyntax: EXPLICIT_LE, elements: grayAttrs({ rows: 2, cols: 2, bitsAllocated: 8 }) })), 'no-pixel-data');
    const full = writeDicom({ transferSyntax: EXPLICIT_LE, elements: grayAttrs({ rows: 64, cols: 64, bitsAllocated: 16 }), pixels: { data: new Uint16Array(64 * 64), bitsAllocated: 16 } });
    expectCode(() => decodeDicom(full.subarray(0, full.length - 1000)), 'truncated');
    expectCode(() => decodeDicom(full, { maxPixels: 1000 }), 'too-large');
  });
});

describe('windowing (PS3.3 C.11.2.1.2)', () => {
  it('LINEAR function edges and midpoint', () => {
    // c=40, w=400: below c-0.5-(w-1)/2 = -160 → 0; above 239 → 255
    expect(windowValue(-160, 40, 400)).toBe(0);
    expect(windowValue(240, 40, 400)).toBe(255);
    expect(windowValue(39.5, 40, 400)).toBeCloseTo(127.5, 10);
    expect(Array.from(applyWindow([-1000, 39.5, 1000], { center: 40, width: 400 }))).toEqual([0, 128, 255]);
    expect(Array.from(applyWindow([-1000, 39.5, 1000], { center: 40, width: 400 }, { invert: true }))).toEqual([255, 128, 0]); // 127.5 rounds half-to-even
  });
  it('LINEAR_EXACT and SIGMOID', () => {
    expect(windowValue(40, 40, 400, 'LINEAR_EXACT')).toBeCloseTo(127.5, 10);
    expect(windowValue(40, 40, 400, 'SIGMOID')).toBeCloseTo(127.5, 10);
  });
  it('auto window maps min→0, max→255', () => {
    const w = autoWindow(-1000, 3000);
    expect(Array.from(applyWindow([-1000, 3000], w))).toEqual([0, 255]);
  });
});
