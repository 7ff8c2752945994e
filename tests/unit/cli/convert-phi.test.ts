/**
 * `npm run convert` sidecars without --keep-phi (issue 19.5): no input path, no free text (descriptions, comments,
 * explanations, device names), no identifying attributes; with --keep-phi they are all there. The DICOM is written
 * by pydicom with free text in every place the decoder reads it from.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { PYTHON, REPO_ROOT } from '../helpers/shared';

const TSX = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsx');
const CLI = path.join(REPO_ROOT, 'app', 'cli', 'convert.ts');
const FREE_TEXT = ['Jane', 'JANE', 'Smith', 'ward 7', 'PA ERECT', 'follow up', 'St Elsewhere', 'Room 12', 'MRN-4471', 'DOE'];

describe('convert sidecar privacy', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-convert-phi-'));
  // A folder name that itself identifies someone: it must not reach the sidecar either.
  const input = path.join(tmp, 'DOE_JANE_MRN-4471', 'chest.dcm');
  let plain: string;
  let kept: string;

  beforeAll(() => {
    fs.mkdirSync(path.dirname(input), { recursive: true });
    const mk = spawnSync(PYTHON, [path.join(REPO_ROOT, 'tests/unit/cli/make_freetext_dicom.py'), input], { encoding: 'utf8' });
    if (mk.status !== 0) throw new Error(`make_freetext_dicom.py: ${mk.stderr}`);
    for (const [dir, extra] of [['out', []], ['out-phi', ['--keep-phi']]] as const) {
      const r = spawnSync(TSX, [CLI, input, '--out', path.join(tmp, dir), ...extra], { encoding: 'utf8', cwd: REPO_ROOT, timeout: 120_000 });
      if (r.status !== 0) throw new Error(`convert: ${r.stderr}`);
    }
    plain = fs.readFileSync(path.join(tmp, 'out', 'chest.json'), 'utf8');
    kept = fs.readFileSync(path.join(tmp, 'out-phi', 'chest.json'), 'utf8');
  }, 180_000);

  it('without --keep-phi: no input path, no free text, no identifying attributes; the coded and numeric facts stay', () => {
    const j = JSON.parse(plain);
    expect(j.source).toBeUndefined();
    expect(plain).not.toContain(tmp);
    expect(plain).not.toContain('DOE_JANE');
    for (const t of FREE_TEXT) expect(plain, t).not.toContain(t);
    expect(j.identifying).toBeUndefined();
    expect(j.metadata.StudyDescription).toBeUndefined();
    expect(j.metadata.SeriesDescription).toBeUndefined();
    expect(j.metadata.Manufacturer).toBeUndefined();
    expect(j.metadata).toMatchObject({ Modality: 'DX', Rows: 16, Columns: 24, BitsStored: 12, WindowCenter: 2048, WindowWidth: 4096 });
    // The window used is still described, without its explanation.
    expect(j.display.rendered_with).toBe('Window 1: C 2048 / W 4096');
    expect(j.display.presets).toContain('Window 2: C 1000 / W 1500');
  });

  it('with --keep-phi: the path, the descriptions, the explanations and the identifying attributes are kept', () => {
    const j = JSON.parse(kept);
    expect(j.source).toBe(input);
    expect(j.metadata.StudyDescription).toBe('CHEST PA for Jane Doe ward 7');
    expect(j.metadata.SeriesDescription).toBe('PA ERECT Dr Smith');
    expect(j.identifying).toMatchObject({ PatientName: 'DOE^JANE', PatientID: 'MRN-4471' });
    expect(j.display.rendered_with).toContain('JANE DOE FULL');
  });
});
