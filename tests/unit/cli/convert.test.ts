/**
 * `npm run convert` end to end: real DICOMs from ../shared/data/dicom-codecs and pydicom-written fixtures, outputs
 * read back with Pillow/NumPy and compared with pydicom (convert_reference.py); refusals print and the run goes on.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { hasShared, lacksShared, missingReason, PYTHON, REPO_ROOT, sharedPath } from '../helpers/shared';

const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(REPO_ROOT, 'app', 'cli', 'convert.ts');
const DIR = 'data/dicom-codecs/files';

function convert(args: string[]) {
  return spawnSync(TSX, [CLI, ...args], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 300_000 });
}

describe.skipIf(lacksShared(DIR))(`npm run convert ${hasShared(DIR) ? '' : missingReason(DIR)}`, () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-convert-'));
  const fixtures = path.join(tmp, 'fixtures');
  const out = path.join(tmp, 'out');
  const inputs = path.join(tmp, 'inputs');
  let run: ReturnType<typeof convert>;
  let ref: Record<string, Record<string, number | boolean | string | number[]>>;
  const picked: Record<string, string> = {};

  beforeAll(() => {
    const mk = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/imaging/reference/make_dicoms.py'), fixtures], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`make_dicoms.py: ${mk.stderr}`);
    fs.mkdirSync(inputs);
    // a folder with real files, pydicom fixtures, a refused syntax and a non-image
    for (const f of ['XA1_JLSL', 'JPEGLossless_1s_1f_u_16_12.dcm', 'Monochrome1-Jpeg.dcm', 'JPEG2KLossless_1s_1f_u_16_16.dcm', 'gdcm-US-ALOKA-16.dcm']) {
      fs.symlinkSync(sharedPath(DIR, f), path.join(inputs, f));
      picked[f.replace(/\.dcm$/, '')] = sharedPath(DIR, f);
    }
    for (const f of ['voi-sigmoid', 'presentation-inverse', 'rescale-signed', 'voi-lut-sequence', 'multiframe-native', 'jpeg-xl']) {
      fs.copyFileSync(path.join(fixtures, `${f}.dcm`), path.join(inputs, `${f}.dcm`));
      if (f !== 'jpeg-xl') picked[f] = path.join(fixtures, `${f}.dcm`);
    }
    fs.writeFileSync(path.join(inputs, 'notes.txt'), 'not an image');
    run = convert([inputs, '--out', out]);
    const r = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/cli/convert_reference.py'), out, ...Object.entries(picked).filter(([s]) => s !== 'gdcm-US-ALOKA-16').map(([s, f]) => `${s}=${f}`)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`convert_reference.py: ${r.stderr}`);
    ref = JSON.parse(r.stdout);
  }, 600_000);

  it('exits 0, names each refused file with its cause, converts the rest', () => {
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/jpeg-xl\.dcm: .*JPEG XL Lossless \(transfer syntax 1\.2\.840\.10008\.1\.2\.4\.110\)/);
    expect(run.stderr).toMatch(/notes\.txt: This file is not a PNG, JPEG or DICOM image/);
    expect(run.stderr).toMatch(/10 converted, 2 refused/);
    for (const stem of Object.keys(picked)) {
      expect(fs.existsSync(path.join(out, `${stem}.png`)), stem).toBe(true);
      expect(fs.existsSync(path.join(out, `${stem}.json`)), stem).toBe(true);
    }
  });

  it('the 8-bit PNG is the default display, equal to pydicom + the presentation of PS3.3 C.11.6', () => {
    for (const [stem, r] of Object.entries(ref)) {
      // rounding only (≤ 0.5); the lossy JPEG baseline adds its ±1 stored value × the window's slope 255/(W−1) ≈ 1.004
      const allowed = stem === 'Monochrome1-Jpeg' ? 0.5 + 255 / (255.0623 - 1) + 1e-3 : 0.5 + 1e-3;
      expect(r.display_max_diff as number, stem).toBeLessThanOrEqual(allowed);
    }
    expect(ref['Monochrome1-Jpeg'].inverted).toBe(true);
    expect(ref['presentation-inverse'].inverted).toBe(true);
  });

  it('modality values: 16-bit PNG when integral, float32 .npy otherwise, both equal to pydicom', () => {
    expect(ref.XA1_JLSL.modality_png_max_diff).toBe(0);
    expect(ref['JPEG2KLossless_1s_1f_u_16_16'].modality_png_max_diff).toBe(0);
    expect(ref['voi-sigmoid'].modality_png_max_diff).toBe(0);
    // rescale slope 3.774114: fractional → .npy (float32 rounding of float64)
    expect(ref['JPEGLossless_1s_1f_u_16_12'].modality_npy_max_rel as number).toBeLessThan(1e-6);
    // negative modality values → .npy
    expect(ref['rescale-signed'].modality_npy_max_diff).toBe(0);
    // 8-bit source: no modality file
    expect(fs.existsSync(path.join(out, 'Monochrome1-Jpeg.modality.png'))).toBe(false);
  });

  it('sidecar: transfer syntax, window used, frames; no identifying fields unless --keep-phi', () => {
    const j = JSON.parse(fs.readFileSync(path.join(out, 'JPEG2KLossless_1s_1f_u_16_16.json'), 'utf8'));
    expect(j.transfer_syntax.uid).toBe('1.2.840.10008.1.2.4.90');
    expect(j.codec).toBe('@cornerstonejs/codec-openjpeg');
    expect(j.display.voi).toMatchObject({ kind: 'window', source: 'auto' });
    expect(j.notes.join(' ')).toMatch(/lies entirely below the pixel values/);
    const mf = JSON.parse(fs.readFileSync(path.join(out, 'multiframe-native.json'), 'utf8'));
    expect([mf.frames, mf.frame]).toEqual([3, 1]);
    const sig = fs.readFileSync(path.join(out, 'voi-sigmoid.json'), 'utf8');
    expect(JSON.parse(sig).display.voi).toMatchObject({ kind: 'window', function: 'SIGMOID', center: 2048, width: 1024 });
    expect(sig).not.toContain('QA^SYNTHETIC');
    expect(sig).not.toContain('QA-0001');
    const lut = JSON.parse(fs.readFileSync(path.join(out, 'voi-lut-sequence.json'), 'utf8'));
    // LUT Explanation is free text (LO): left out without --keep-phi (convert-phi.test.ts).
    expect(lut.display.voi).toMatchObject({ kind: 'voi-lut', explanation: null });
    const pal = JSON.parse(fs.readFileSync(path.join(out, 'gdcm-US-ALOKA-16.json'), 'utf8'));
    expect([pal.channels, pal.photometric]).toEqual([3, 'PALETTE COLOR']);

    const out2 = path.join(tmp, 'out-phi');
    const r2 = convert([path.join(inputs, 'voi-sigmoid.dcm'), path.join(inputs, 'multiframe-native.dcm'), '--out', out2, '--keep-phi', '--all-frames']);
    expect(r2.status, r2.stderr).toBe(0);
    const phi = JSON.parse(fs.readFileSync(path.join(out2, 'voi-sigmoid.json'), 'utf8'));
    expect(phi.identifying).toMatchObject({ PatientName: 'QA^SYNTHETIC', PatientID: 'QA-0001' });
    expect(fs.readdirSync(out2).filter((f) => /^multiframe-native\.f000[123]\.png$/.test(f)).length).toBe(3);
  });

  it('exits 1 when nothing converts', () => {
    const r = convert([path.join(inputs, 'notes.txt'), '--out', path.join(tmp, 'none')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/0 converted, 1 refused/);
  });
});
