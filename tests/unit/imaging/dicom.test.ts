import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import {
  decodeDicom, dicomToRaster, applyWindow, windowValue, autoWindow,
} from '../../../app/lib/imaging';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { decodeRleFrame } from '../../../app/lib/imaging/codecs/rle';
import { hasShared, lacksShared, missingReason, readBytes, sharedPath } from '../helpers/shared';

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

// DICOM files that tests write are written by pydicom (reference/make_dicoms.py, pipeline-pydicom.test.ts); here only
// the pure pieces that need no file.
describe('RLE segments (PS3.5 Annex G)', () => {
  it('RLE Lossless frame: PackBits byte planes, MSB first (PS3.5 G.3)', () => {
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
    // a segment that stops short is named as truncated
    expect(() => decodeRleFrame(frame.subarray(0, frame.length - 1), 4)).toThrow(/RLE segment 2 ends after 3 of 4 bytes/);
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
