/**
 * Issue 19 item 1: memory bounded before it is spent, on the adversarial samples of ../shared/data/adversarial and on
 * other inputs of the same KINDS written here by pydicom, Pillow and zlib (reference/make_hostile.py): other tables
 * (indirect palette segments, Modality LUTs), other lying counts (native and RLE frames), nesting in each VR
 * encoding and inside a deflated data set, other compressed chunks (zTXt, iTXt, iCCP, IDAT plain and interlaced),
 * header values that would make a silently wrong image. Each refusal must name the limit and the element or chunk;
 * each decode is compared with pydicom where pydicom decodes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { decodeDicom, isImageDecodeError } from '../../../app/lib/imaging';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { readInputFile } from '../../../app/platform/node/read-input';
import { hasPython, hasShared, PYTHON, readBytes, REPO_ROOT, sharedPath } from '../helpers/shared';
import { readNpy } from '../helpers/npy';
import { pydicomReferences } from '../helpers/pydicom';

const ADV = 'data/adversarial/cases';
const EXP = 'data/adversarial/expected';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hostile-'));
const f = (name: string) => path.join(dir, name);

async function refusal(bytes: Uint8Array): Promise<{ code: string; message: string; ms: number; rssMb: number }> {
  const rss0 = process.memoryUsage().rss;
  const t = performance.now();
  try {
    await decodeImageFileNode(bytes);
  } catch (e) {
    if (!isImageDecodeError(e)) throw e;
    return { code: e.code, message: e.message, ms: performance.now() - t, rssMb: (process.memoryUsage().rss - rss0) / 2 ** 20 };
  }
  throw new Error('decoded, but a refusal was expected');
}

describe.skipIf(!hasPython)('hostile inputs of the adversarial kinds', () => {
  beforeAll(() => {
    execFileSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/imaging/reference/make_hostile.py'), dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  }, 120_000);

  it('segmented palettes: tables expanding past their descriptor by indirect segments, or replaying themselves, are refused naming the table; a valid one matches pydicom', async () => {
    const replay = await refusal(readBytes(f('palette-indirect-replay.dcm')));
    expect(replay.code).toBe('corrupt');
    expect(replay.message).toMatch(/Segmented Red Palette Color Lookup Table Data \(0028,1221\) expands past 256 entries/);
    const loop = await refusal(readBytes(f('palette-empty-replay.dcm')));
    expect(loop.message).toMatch(/Palette Color Lookup Table Data \(0028,1221\)/);
    expect(loop.ms).toBeLessThan(1000);
    const img = decodeDicom(readBytes(f('palette-ok.dcm')));
    const ref = pydicomReferences([f('palette-ok.dcm')])[0].get('rgb');
    expect(Array.from(img.paletteRgb16!)).toEqual(Array.from(ref.data as ArrayLike<number>, Number));
  });

  it('Modality LUT: data shorter than its descriptor is refused naming both counts; longer data is used up to the descriptor, as pydicom', async () => {
    expect((await refusal(readBytes(f('mlut-short.dcm')))).message).toMatch(/declares 65536 entries but its LUT Data holds 10/);
    const img = decodeDicom(readBytes(f('mlut-long.dcm')));
    expect(img.modalityTransform).toMatch(/4096 entries/);
    const ref = pydicomReferences([f('mlut-long.dcm')])[0].get('modality');
    expect(Array.from(img.pixels)).toEqual(Array.from(ref.data as ArrayLike<number>, Number));
  });

  it('Number of Frames that lies (native 1,000,000; RLE 5,000): the 2 frames present are decoded, equal to what was written, with a note', async () => {
    const want = readNpy(f('frames.npy'));
    for (const name of ['frames-native.dcm', 'frames-rle.dcm']) {
      const bytes = readBytes(f(name));
      const first = decodeDicom(bytes);
      expect(first.frames, name).toBe(2);
      expect(first.notes.join(' '), name).toMatch(/declares (1000000|5000) frames in Number of Frames \(0028,0008\).*holds 2/);
      for (const k of [0, 1]) {
        const img = decodeDicom(bytes, { frame: k });
        expect(Array.from(img.pixels), `${name} frame ${k + 1}`).toEqual(Array.from((want.data as Uint16Array).subarray(k * 4096, (k + 1) * 4096)));
      }
      expect(() => decodeDicom(bytes, { frame: 2 })).toThrow(/Frame 3 was asked for, but the file has 2 frames/);
    }
  });

  it('sequences nested 100 deep are refused before parsing in explicit, implicit and deflated data sets, naming the limit and the tag; 10 deep decodes', async () => {
    for (const name of ['nested-100-explicit.dcm', 'nested-100-implicit.dcm', 'nested-100-deflated.dcm']) {
      const r = await refusal(readBytes(f(name)));
      expect(r.code, name).toBe('unsupported-dicom');
      expect(r.message, name).toMatch(/nests sequences more than 64 levels deep \(at \(0040,A730\)\)/);
    }
    expect(decodeDicom(readBytes(f('nested-10.dcm'))).width).toBe(64);
  });

  it('fuzz kind: 20,000 nested undefined-length sequences spliced into a real file are refused, not a stack overflow', async () => {
    const b = readBytes(f('nested-10.dcm'));
    const modality = findTag(b, 0x0008, 0x0060); // an element boundary in the data set: before (0008,0060) Modality
    const parts: number[] = [];
    for (let d = 0; d < 20000; d++) parts.push(0x09, 0, 0x10, 0x10, 0x53, 0x51, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xfe, 0xff, 0, 0xe0, 0xff, 0xff, 0xff, 0xff);
    for (let d = 0; d < 20000; d++) parts.push(0xfe, 0xff, 0x0d, 0xe0, 0, 0, 0, 0, 0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0);
    expect(modality).toBeGreaterThan(0);
    const bomb = new Uint8Array(b.length + parts.length);
    bomb.set(b.subarray(0, modality));
    bomb.set(parts, modality);
    bomb.set(b.subarray(modality), modality + parts.length);
    const r = await refusal(bomb);
    expect(r.message).toMatch(/more than 64 levels deep \(at \(0009,1010\)\)/);
  });

  it('deflated data set inflating to 300 MB (pydicom-written) is refused at the 256 MB cap, naming it', async () => {
    const r = await refusal(readBytes(f('deflate-300mb.dcm')));
    expect(r.code).toBe('too-large');
    expect(r.message).toMatch(/Deflated Explicit VR Little Endian data set inflates to more than 256 MB/);
    expect(r.rssMb).toBeLessThan(512);
  });

  it('zero Rescale Slope is ignored with a note, as dcmtk (pydicom would give a constant image); a constant image says so', () => {
    const img = decodeDicom(readBytes(f('slope-zero.dcm')));
    expect(img.notes.join(' ')).toMatch(/Rescale Slope \(0028,1053\) 0 would map every pixel to 5; the rescale is ignored/);
    expect(img.range.max - img.range.min).toBeGreaterThan(1000);
    const flat = decodeDicom(readBytes(f('constant.dcm')));
    expect(flat.notes.join(' ')).toMatch(/Every pixel has the same modality value \(777\)/);
  });

  it('PNG: zTXt, iTXt and iCCP inflating to 64 MB and IDAT with 100 MB past its rows (plain, interlaced) are refused naming the chunk; a small zTXt decodes', async () => {
    for (const [name, chunk] of [['ztxt-64mb.png', 'zTXt'], ['itxt-64mb.png', 'iTXt'], ['iccp-64mb.png', 'iCCP'], ['idat-bomb.png', 'image data \\(IDAT'], ['idat-bomb-interlaced.png', 'image data \\(IDAT']]) {
      const r = await refusal(readBytes(f(name)));
      expect(r.code, name).toBe('too-large');
      expect(r.message, name).toMatch(new RegExp(`PNG's ${chunk}`));
      expect(r.rssMb, name).toBeLessThan(64);
    }
    expect((await decodeImageFileNode(readBytes(f('ztxt-small.png')))).width).toBe(64);
  });

  it('fuzz regressions: a PNG IHDR and a JPEG SOF claiming 16 MP and 100 MP over 64×64 data are refused before a decoder allocates them', async () => {
    const png = await refusal(readBytes(f('ihdr-lie.png')));
    expect(png.code).toBe('truncated');
    expect(png.message).toMatch(/PNG's image data \(IDAT\) inflates to .* but its IHDR \(4000×4000/);
    expect(png.rssMb).toBeLessThan(64);
    const jpg = await refusal(readBytes(f('sof-lie.jpg')));
    expect(jpg.code).toBe('truncated');
    expect(jpg.message).toMatch(/declares 9999×9999 pixels \(SOF\), which needs at least 195313 bytes of scan data/);
    expect(jpg.ms).toBeLessThan(1000);
    expect(jpg.rssMb).toBeLessThan(64);
    // fuzz seed 19 #38: the SOF's own length set to 2 as well, so SOS cannot be found by walking segments (jpeg-js
    // resynchronised and spent 4 s and 600 MB): the data after the SOF bounds the scan data
    const b = new Uint8Array(readBytes(f('sof-lie.jpg')));
    const sof = b.findIndex((x, i) => x === 0xff && b[i + 1] === 0xc0);
    new DataView(b.buffer).setUint16(sof + 2, 2);
    expect((await refusal(b)).message).toMatch(/declares 9999×9999 pixels \(SOF\)/);
  });
});

function findTag(b: Uint8Array, group: number, elem: number): number {
  for (let i = 132; i + 4 < b.length; i++) if ((b[i] | (b[i + 1] << 8)) === group && (b[i + 2] | (b[i + 3] << 8)) === elem) return i;
  return -1;
}

describe('the adversarial samples of ../shared', () => {
  it.skipIf(!hasShared(ADV, '01-palette-segmented-lut-bomb'))('01: the palette bomb is refused naming the segmented palette table, fast and bounded', async () => {
    const r = await refusal(readBytes(sharedPath(ADV, '01-palette-segmented-lut-bomb/palette.dcm')));
    expect(r.message).toMatch(/Segmented Red Palette Color Lookup Table Data \(0028,1221\) expands past 256 entries/);
    expect(r.ms).toBeLessThan(2000);
    expect(r.rssMb).toBeLessThan(64);
  });

  it.skipIf(!hasShared(ADV, '02-nframes-999999999-one-frame'))('02: frame 1 decodes equal to the reference, with a note that the header declares 999999999 frames', async () => {
    const img = decodeDicom(readBytes(sharedPath(ADV, '02-nframes-999999999-one-frame/image.dcm')));
    expect(img.frames).toBe(1);
    expect(img.metadata.NumberOfFrames).toBe(999999999);
    expect(img.notes.join(' ')).toMatch(/declares 999999999 frames.*holds 1: only frame 1 exists/);
    const ref = readNpy(sharedPath(EXP, '02-nframes-999999999-one-frame.frame1.modality.npy'));
    expect(Array.from(img.pixels)).toEqual(Array.from(ref.data as ArrayLike<number>, Number));
  });

  it.skipIf(!hasShared(ADV, '03-deflate-bomb-2gib'))('03: the 2 GB deflate bomb is refused at the cap, naming it, within the 512 MB budget', async () => {
    const r = await refusal(readBytes(sharedPath(ADV, '03-deflate-bomb-2gib/image.dcm')));
    expect(r.code).toBe('too-large');
    expect(r.message).toMatch(/inflates to more than 256 MB/);
    expect(r.rssMb).toBeLessThan(512);
    expect(r.ms).toBeLessThan(20_000);
  });
});

describe('codestream size against Rows/Columns', () => {
  const jlsl = 'data/dicom-codecs/files/XA1_JLSL';
  it.skipIf(!hasShared(jlsl))('fuzz regression (seed 19 #2340): a JPEG-LS file whose Columns says 2 is refused before charls runs (it spent 30 s failing)', async () => {
    const b = new Uint8Array(readBytes(sharedPath(jlsl)));
    const at = findTag(b, 0x0028, 0x0011);
    expect(at).toBeGreaterThan(0);
    new DataView(b.buffer).setUint16(at + 8, 2, true); // explicit VR US: value after the 8-byte header
    const r = await refusal(b);
    expect(r.message).toMatch(/The compressed frame is 1024×1024 \(its codestream header\) but the DICOM header says 2×1024/);
    expect(r.ms).toBeLessThan(1000);
  });
});

describe('file size before the read', () => {
  it('readInputFile refuses a 300 MB (sparse) file from its size, naming the size and the limit, without reading it', () => {
    const p = path.join(dir, 'sparse.dcm');
    fs.writeFileSync(p, '');
    fs.truncateSync(p, 300 * 2 ** 20);
    const rss0 = process.memoryUsage().rss;
    expect(() => readInputFile(p)).toThrow(/the file is 300 MB, over the limit of 256 MB for one image; not read/);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(32 * 2 ** 20);
    fs.writeFileSync(p, new Uint8Array(100));
    expect(readInputFile(p, 100).length).toBe(100);
    expect(() => readInputFile(p, 99)).toThrow(/over the limit/);
  });
});
