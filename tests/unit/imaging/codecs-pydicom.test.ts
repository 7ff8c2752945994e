/**
 * Every file in ../shared/data/dicom-codecs decoded by our pipeline (codec packages, LUTs, colour) against pydicom
 * with pylibjpeg / pylibjpeg-libjpeg / pylibjpeg-openjpeg / pyjpegls: exact for lossless syntaxes, within the
 * documented tolerance for lossy ones. Prints the table the issue asks for.
 */
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { decodeDicomAsync, CODEC_SYNTAXES } from '../../../app/lib/imaging';
import { comparePixels, compareVoi } from '../helpers/compare-dicom';
import { nodeWasmLoader } from '../../../app/platform/node/decode';
import { pydicomReferences, type PydicomRef } from '../helpers/pydicom';
import { hasShared, lacksShared, missingReason, readBytes, sharedPath } from '../helpers/shared';

const DIR = 'data/dicom-codecs/files';

/**
 * Max abs difference allowed against pydicom, per transfer syntax, for lossy ones (lossless: 0). Why each:
 * - .50 / .51: JPEG's IDCT is not bit-exact across implementations (ISO/IEC 10918-2 allows ±1 per sample after
 *   rounding); libjpeg-turbo / IJG-12 vs pydicom's libjpeg (Thomas Richter) measured ≤ 1 at 8 and 12 bits.
 * - .81: JPEG-LS near-lossless decodes deterministically (CharLS on both sides): 0.
 * - .91: OpenJPEG on both sides: 0.
 * - .203: OpenJPH vs pydicom's OpenJPEG HTJ2K decoder, irreversible 9/7 in floating point: ≤ 1.
 */
const LOSSY_TOLERANCE: Record<string, number> = {
  '1.2.840.10008.1.2.4.50': 1,
  '1.2.840.10008.1.2.4.51': 1,
  '1.2.840.10008.1.2.4.81': 0,
  '1.2.840.10008.1.2.4.91': 0,
  '1.2.840.10008.1.2.4.203': 1,
};

const files = hasShared(DIR) ? fs.readdirSync(sharedPath(DIR)).sort() : [];
const table: string[] = [];

describe.skipIf(lacksShared(DIR))(`dicom-codecs vs pydicom ${hasShared(DIR) ? '' : missingReason(DIR)}`, () => {
  const refs = new Map<string, PydicomRef>();
  const load = () => {
    if (refs.size === 0) {
      const r = pydicomReferences(files.map((f) => sharedPath(DIR, f)));
      files.forEach((f, i) => refs.set(f, r[i]));
    }
    return refs;
  };

  it('has the 14 files of the README', () => {
    expect(files.length).toBe(14);
  });

  for (const name of files) {
    it(`${name}: decodes equal to pydicom`, async () => {
      const ref = load().get(name)!;
      expect(ref.info.error, `pydicom could not read ${name}`).toBeUndefined();
      const ts = ref.info.transfer_syntax!;
      const tol = ts in LOSSY_TOLERANCE ? LOSSY_TOLERANCE[ts] : 0;
      if (ts in CODEC_SYNTAXES) expect(CODEC_SYNTAXES[ts].lossless).toBe(!(ts in LOSSY_TOLERANCE));
      const { what, worst, images } = await comparePixels(readBytes(sharedPath(DIR, name)), ref);
      const frames = ref.info.frames ?? 1;
      expect(images[0].frames).toBe(frames);
      const img = images[0];
      const allowed = tol;
      table.push(`| ${name} | ${ts} | ${ref.info.photometric} | ${frames} | yes | ${what} | ${worst} | ${allowed} | ${img.codec ?? 'native'} |`);
      expect(worst, `${name}: max |ours − pydicom| over ${what}`).toBeLessThanOrEqual(allowed);
      // the header's Lossy Image Compression (0028,2110) is passed on to the user
      if (name === 'Monochrome1-Jpeg.dcm') expect(img.notes.join(' ')).toMatch(/lossy-compressed \(ISO_10918_1\), ratio 12\.702:1/);
    });
  }

  it('VOI: VOI LUT Sequence and windows render as pydicom apply_voi_lut / apply_windowing (8-bit display)', async () => {
    const cases: [string, 'voi' | 'window'][] = [];
    for (const name of files) {
      const ref = load().get(name)!;
      if (ref.has('voi')) cases.push([name, 'voi']);
      if (ref.has('window')) cases.push([name, 'window']);
    }
    expect(cases.length).toBeGreaterThanOrEqual(4);
    for (const [name, kind] of cases) {
      const ref = load().get(name)!;
      const img = await decodeDicomAsync(readBytes(sharedPath(DIR, name)), { loadWasm: nodeWasmLoader });
      const preset = kind === 'voi' ? img.presets[0] : img.presets.find((p) => p.id === 'window-1')!;
      const worst = compareVoi(img, ref, kind, preset);
      table.push(`| ${name} | VOI: ${preset.label} | | | | display 0..255 vs pydicom ${kind === 'voi' ? 'apply_voi_lut' : 'apply_windowing'} | ${worst.toFixed(3)} | 0.5 | |`);
      // ours is rounded to 8 bits: within half a grey level (+ float32 slack) of pydicom's exact value
      expect(worst, `${name} ${kind}`).toBeLessThanOrEqual(0.5 + 1e-3);
    }
  });

  afterAll(() => {
    if (table.length) {
      const out = ['| file | transfer syntax | photometric | frames | decoded | compared | max abs diff | allowed | codec |', '| --- | --- | --- | --- | --- | --- | --- | --- | --- |', ...table].join('\n');
      console.log(out);
      fs.mkdirSync(path.resolve('tests/artifacts'), { recursive: true });
      fs.writeFileSync(path.resolve('tests/artifacts/dicom-codecs-vs-pydicom.md'), out + '\n');
    }
  });
});
