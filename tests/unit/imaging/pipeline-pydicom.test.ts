/**
 * The PS3.3 C.11 pipeline and the irregular-file handling on small DICOMs written by pydicom
 * (reference/make_dicoms.py): each decode is compared with pydicom's own reading of the same file; each refusal must
 * name the real cause. Needs the project's Python environment (.venv with pydicom and its plugins); fails without.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { decodeDicom, decodeDicomAsync, isImageDecodeError, renderGray, type ImageDecodeError } from '../../../app/lib/imaging';
import { nodeWasmLoader } from '../../../app/platform/node/decode';
import { comparePixels, compareVoi } from '../helpers/compare-dicom';
import { pydicomReferences, type PydicomRef } from '../helpers/pydicom';
import { PYTHON, REPO_ROOT, readBytes } from '../helpers/shared';

interface Case { name: string; file: string; expect: string; why: string; ref: string }

const OUT = path.join(os.tmpdir(), `cxr-pydicom-fixtures-${process.pid}`);
let cases: Case[] | undefined;
let refs: Map<string, PydicomRef> | undefined;

function setup(): { cases: Case[]; refs: Map<string, PydicomRef> } {
  if (!cases) {
    const r = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/imaging/reference/make_dicoms.py'), OUT], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`make_dicoms.py failed (${PYTHON}): ${r.stderr || r.error}`);
    cases = JSON.parse(fs.readFileSync(path.join(OUT, 'cases.json'), 'utf8')) as Case[];
    const decodable = cases.filter((c) => c.expect === 'decode' && c.ref === c.name);
    const rr = pydicomReferences(decodable.map((c) => c.file));
    const byName = new Map(decodable.map((c, i) => [c.name, rr[i]]));
    refs = new Map(cases.filter((c) => c.expect === 'decode').map((c) => [c.name, byName.get(c.ref)!]));
  }
  return { cases, refs: refs! };
}

const NAMES = [
  'voi-linear_exact', 'voi-sigmoid', 'voi-linear', 'presentation-inverse', 'rescale-signed', 'be-8bit-ow', 'be-16bit',
  'multiframe-native', 'multiframe-rle-empty-bot', 'implicit', 'deflated', 'ybr-full', 'rgb-planar1', 'modality-lut',
  'voi-lut-sequence', 'seqdelim-ffffffff-in-sq', 'trailing-garbage', 'overlay-high-bits', 'signed-12', 'mono1-8bit',
  'full-file', 'meta-no-preamble', 'dicm-no-preamble', 'bare-implicit', 'bare-explicit', 'says-explicit-is-implicit',
  'says-implicit-is-explicit', 'itemdelim-nonzero-explicit', 'seqdelim-ffffffff-implicit', 'rle-rgb',
  'jpegls-rgb-planar0', 'jpegls-rgb-planar1', 'j2k-rgb', 'j2k-ybr-rct', 'jpegls-signed16', 'j2k-signed16',
  'multiframe-jpegls-bot', 'multiframe-rle-bot', 'multiframe-jpegls-eot', 'bits-1', 'bits-32', 'pixel-padding',
];
/**
 * Lossy: max difference allowed against pydicom. Colour JPEG with 4:2:0 chroma: libjpeg-turbo's "fancy" (triangle)
 * chroma upsampling and its IDCT vs pylibjpeg-libjpeg's; ITU-T T.81 leaves both to the decoder. Measured 3.
 */
const TOLERANCE: Record<string, number> = { 'jpeg-baseline-rgb': 3 };

const REFUSALS: [string, string, RegExp][] = [
  ['jpeg-xl', 'unsupported-transfer-syntax', /JPEG XL Lossless \(transfer syntax 1\.2\.840\.10008\.1\.2\.4\.110\)/],
  ['truncated-pixel-data', 'truncated', /Pixel Data declares 768 bytes but the file ends 468 bytes into it/],
  ['rows-larger-than-data', 'corrupt', /Pixel Data holds 768 bytes but .* needs? 960.*not truncated/],
  ['no-pixel-data', 'no-pixel-data', /no Pixel Data element/],
  ['jpeg-3comp-in-1-sample-header', 'corrupt', /3 components but the DICOM header says 1 samples per pixel/],
  ['j2k-garbage', 'corrupt', /JPEG 2000 .* could not be decoded by @cornerstonejs\/codec-openjpeg/],
];

describe('pipeline on pydicom-written DICOMs', () => {
  it('writes every fixture', () => {
    const { cases: c } = setup();
    expect(c.map((x) => x.name)).toEqual(expect.arrayContaining([...NAMES, ...Object.keys(TOLERANCE), ...REFUSALS.map((r) => r[0])]));
  });

  for (const name of [...NAMES, ...Object.keys(TOLERANCE)]) {
    it(`${name}: pixels equal pydicom's`, async () => {
      const { cases: c, refs: r } = setup();
      const cs = c.find((x) => x.name === name)!;
      const ref = r.get(name)!;
      expect(ref.info.error).toBeUndefined();
      const bytes = readBytes(cs.file);
      const { worst, images, what } = await comparePixels(bytes, ref);
      expect(worst, `${name}: ${what}`).toBeLessThanOrEqual(TOLERANCE[name] ?? 0);
      const img = images[0];
      if (ref.has('voi')) {
        const preset = img.presets[0];
        expect(compareVoi(img, ref, 'voi', preset), `${name} ${preset.label}`).toBeLessThanOrEqual(0.5 + 1e-3);
      }
      if (ref.has('window')) {
        const preset = img.presets.find((p) => p.id === 'window-1')!;
        expect(compareVoi(img, ref, 'window', preset)).toBeLessThanOrEqual(0.5 + 1e-3);
      }
    });
  }

  it('windows: every file window is a preset with its explanation; LINEAR_EXACT / SIGMOID kept', async () => {
    const { cases: c } = setup();
    for (const fn of ['LINEAR_EXACT', 'SIGMOID', 'LINEAR'] as const) {
      const img = await decodeDicomAsync(readBytes(c.find((x) => x.name === `voi-${fn.toLowerCase()}`)!.file), { loadWasm: nodeWasmLoader });
      expect(img.voiLutFunction).toBe(fn);
      expect(img.presets.map((p) => p.id)).toEqual(['window-1', 'window-2', 'full-range']);
      expect(img.presets[0].label).toMatch(/SOFT/);
      expect(img.presets[1].label).toMatch(/BONE/);
      expect(img.defaultPresetId).toBe('window-1');
      // the second window is a different picture
      const a = renderGray(img, { presetId: 'window-1' });
      const b = renderGray(img, { presetId: 'window-2' });
      expect(a.some((v, i) => v !== b[i])).toBe(true);
    }
  });

  it('Presentation LUT Shape INVERSE on MONOCHROME2 inverts the display', async () => {
    const { cases: c } = setup();
    const img = await decodeDicomAsync(readBytes(c.find((x) => x.name === 'presentation-inverse')!.file), { loadWasm: nodeWasmLoader });
    expect(img.invert).toBe(true);
    const shown = renderGray(img);
    const plain = renderGray({ ...img, invert: false });
    expect(Array.from(shown)).toEqual(Array.from(plain, (v) => 255 - v));
    expect(shown[0]).toBe(255); // lowest value white
  });

  it('multi-frame: every frame decodes, frame picker indexes are checked', async () => {
    const { cases: c } = setup();
    const bytes = readBytes(c.find((x) => x.name === 'multiframe-native')!.file);
    const f2 = await decodeDicomAsync(bytes, { loadWasm: nodeWasmLoader, frame: 2 });
    expect(f2.frameIndex).toBe(2);
    expect(f2.notes).toContain('Frame 3 of 3');
    await expect(decodeDicomAsync(bytes, { loadWasm: nodeWasmLoader, frame: 3 })).rejects.toMatchObject({ code: 'corrupt' });
  });

  it('Pixel Padding Value: the full range leaves the padding out (pydicom values, numpy-free check here)', async () => {
    const { cases: c, refs: r } = setup();
    const img = await decodeDicomAsync(readBytes(c.find((x) => x.name === 'pixel-padding')!.file), { loadWasm: nodeWasmLoader });
    const px = r.get('pixel-padding')!.get('pixel').data;
    let min = Infinity, max = -Infinity, n = 0;
    for (const v of px) {
      if (v === 0) n++;
      else {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
    }
    expect(img.range).toEqual({ min, max });
    expect(img.notes.join(' ')).toContain(`${n} pixels are padding (Pixel Padding Value 0)`);
    expect(img.presets.at(-1)).toMatchObject({ id: 'full-range', center: min + (max - min + 1) / 2, width: max - min + 1 });
  });

  it('size limit: too-large before any pixel is unpacked', async () => {
    const { cases: c } = setup();
    const bytes = readBytes(c.find((x) => x.name === 'full-file')!.file);
    await expect(decodeDicomAsync(bytes, { loadWasm: nodeWasmLoader, maxPixels: 100 })).rejects.toMatchObject({ code: 'too-large' });
  });

  it('the sync decoder (no codecs) names the codec a compressed file needs', () => {
    const { cases: c } = setup();
    const e = (() => {
      try {
        decodeDicom(readBytes(c.find((x) => x.name === 'jpeg-baseline-rgb')!.file));
      } catch (x) {
        return x as ImageDecodeError;
      }
    })();
    expect(e?.code).toBe('unsupported-transfer-syntax');
    expect(e?.details).toMatchObject({ needsCodec: true, transferSyntaxUID: '1.2.840.10008.1.2.4.50' });
  });

  it('irregular but readable: notes say what was irregular', async () => {
    const dicm = await decodeDicomAsync(readBytes(setup().cases.find((x) => x.name === 'dicm-no-preamble')!.file), { loadWasm: nodeWasmLoader });
    expect(dicm.notes.join(' ')).toMatch(/no 128-byte preamble/);
    const vr = await decodeDicomAsync(readBytes(setup().cases.find((x) => x.name === 'says-explicit-is-implicit')!.file), { loadWasm: nodeWasmLoader });
    expect(vr.notes.join(' ')).toMatch(/says Explicit VR Little Endian, but the data set is encoded as Implicit VR/);
    const { cases: c } = setup();
    // (the private SQ whose delimiter says 0xFFFFFFFF is read by dicom-parser as is; its pixels are checked above)
    const tg = await decodeDicomAsync(readBytes(c.find((x) => x.name === 'trailing-garbage')!.file), { loadWasm: nodeWasmLoader });
    expect(tg.notes.join(' ')).toMatch(/3 bytes after the Pixel Data/);
    const be = await decodeDicomAsync(readBytes(c.find((x) => x.name === 'be-8bit-ow')!.file), { loadWasm: nodeWasmLoader });
    expect(Array.from(be.pixels.subarray(0, 4))).toEqual([10, 11, 12, 13].map((_, i) => Math.round(10 + (230 * i) / (16 * 24 - 1))));
  });

  for (const [name, code, mention] of REFUSALS) {
    it(`${name}: refused as ${code}, naming the cause`, async () => {
      const { cases: c } = setup();
      const e = await decodeDicomAsync(readBytes(c.find((x) => x.name === name)!.file), { loadWasm: nodeWasmLoader }).then(() => null, (x: unknown) => x);
      expect(isImageDecodeError(e)).toBe(true);
      expect((e as ImageDecodeError).code).toBe(code);
      expect((e as ImageDecodeError).message).toMatch(mention);
    });
  }
});
