/**
 * DICOM SEG export checked by an independent reader: pydicom parses the file, unpacks the 1-bit frames and we
 * compare them, the references and the segment labels with what was written.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { buildDicomSeg, packBits } from '../../../app/lib/sam/dicom-seg';
import { PYTHON, hasPython, hasShared, readBytes, sharedPath } from '../helpers/shared';

const SRC = 'data/dicom/nih_cxr14_dx_1024.dcm';
const hasPydicom = hasPython && spawnSync(PYTHON, ['-c', 'import pydicom, numpy'], { stdio: 'ignore' }).status === 0;

describe('DICOM SEG (dcmjs) read back by pydicom', () => {
  it('packs 1-bit frames LSB first, contiguous across frames', () => {
    expect(Array.from(packBits([Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 1, 1), Uint8Array.of(0, 1)]))).toEqual([0x81, 0x05]);
  });

  it.skipIf(!hasShared(SRC) || !hasPydicom)(`references ${SRC} and holds both masks${hasPydicom ? '' : ' (pydicom missing)'}`, () => {
    const bytes = readBytes(sharedPath(SRC));
    const w = 1024, h = 1024;
    const right = new Uint8Array(w * h);
    const left = new Uint8Array(w * h);
    for (let y = 200; y < 800; y++) for (let x = 150; x < 480; x++) right[y * w + x] = (x + y) % 7 ? 1 : 0;
    for (let y = 220; y < 760; y++) for (let x = 560; x < 880; x++) left[y * w + x] = 1;
    const seg = buildDicomSeg(bytes.slice().buffer, [{ label: 'right lung', mask: right }, { label: 'left lung', mask: left }], { algorithmName: 'tiny-sam (random weights)' });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-seg-'));
    const f = path.join(dir, 'seg.dcm');
    fs.writeFileSync(f, seg);
    const code = `
import json, sys, numpy as np, pydicom
seg = pydicom.dcmread(sys.argv[1]); src = pydicom.dcmread(sys.argv[2], stop_before_pixels=True)
arr = seg.pixel_array
ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
srcref = seg.SharedFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence[0]
print(json.dumps(dict(sop_class=seg.SOPClassUID, modality=seg.Modality, shape=list(arr.shape), type=seg.SegmentationType,
  labels=[s.SegmentLabel for s in seg.SegmentSequence], types=[s.SegmentedPropertyTypeCodeSequence[0].CodeMeaning for s in seg.SegmentSequence],
  ref_ok=ref.ReferencedSOPInstanceUID == src.SOPInstanceUID and srcref.ReferencedSOPInstanceUID == src.SOPInstanceUID,
  series_ok=seg.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID, study_ok=seg.StudyInstanceUID == src.StudyInstanceUID,
  patient_name=str(seg.PatientName), sums=[int(arr[i].sum()) for i in range(arr.shape[0])],
  frames=[int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber) for f in seg.PerFrameFunctionalGroupsSequence])))
np.save(sys.argv[3], arr)
`;
    const r = spawnSync(PYTHON, ['-c', code, f, sharedPath(SRC), path.join(dir, 'arr.npy')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out).toMatchObject({
      sop_class: '1.2.840.10008.5.1.4.1.1.66.4',
      modality: 'SEG',
      shape: [2, 1024, 1024],
      type: 'BINARY',
      labels: ['right lung', 'left lung'],
      types: ['Right lung', 'Left lung'],
      ref_ok: true,
      series_ok: true,
      study_ok: true,
      patient_name: '',
      frames: [1, 2],
    });
    expect(out.sums).toEqual([right.reduce((a, b) => a + b, 0), left.reduce((a, b) => a + b, 0)]);
    // pixel-exact: compare the .npy (uint8, C order) with the masks
    const npy = fs.readFileSync(path.join(dir, 'arr.npy'));
    const hdr = npy.readUInt16LE(8);
    const data = npy.subarray(10 + hdr);
    expect(data.length).toBe(2 * w * h);
    expect(Buffer.compare(data.subarray(0, w * h), Buffer.from(right))).toBe(0);
    expect(Buffer.compare(data.subarray(w * h), Buffer.from(left))).toBe(0);
  });
});
