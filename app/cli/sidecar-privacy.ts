/**
 * What `npm run convert` writes about a DICOM without --keep-phi: no input path and no free text.
 *
 * Free-text attributes (VR LO, SH, ST, LT, UT: descriptions, comments, explanations, device names) can hold
 * anything a technologist typed, names and dates included, so de-identification profiles remove or clean them
 * (DICOM PS3.15 Annex E, Basic Application Level Confidentiality Profile: e.g. Study Description (0008,1030),
 * Series Description (0008,103E), Image Comments (0020,4000) are "X"/"C" there). The sidecar keeps only coded and
 * numeric attributes (an allow-list, so an attribute added to the decoder later stays out until listed here), and
 * the LUT / window explanations that the decoder folds into preset labels are cut out of them.
 */
import type { DecodedImage } from '../lib/imaging';

/** Public attributes kept without --keep-phi: coded values (CS, UI) and numbers. Everything else is left out. */
export const SIDECAR_METADATA_ALLOWED = [
  'TransferSyntaxUID',
  'TransferSyntaxName',
  'SOPClassUID',
  'Modality',
  'BodyPartExamined',
  'ViewPosition',
  'Rows',
  'Columns',
  'SamplesPerPixel',
  'PhotometricInterpretation',
  'BitsAllocated',
  'BitsStored',
  'HighBit',
  'PixelRepresentation',
  'NumberOfFrames',
  'PixelSpacing',
  'ImagerPixelSpacing',
  'RescaleSlope',
  'RescaleIntercept',
  'RescaleType',
  'WindowCenter',
  'WindowWidth',
  'VOILUTFunction',
  'PresentationLUTShape',
  'PlanarConfiguration',
] as const;

const REMOVED = '[free text removed]';

/** "Window 1 (LUNG): C -600 / W 1500" -> "Window 1: C -600 / W 1500"; "VOI LUT 2 (SOFT)" -> "VOI LUT 2". */
function labelWithoutExplanation(label: string): string {
  return label.replace(/^(Window \d+) \(.*\)(: C .*)$/s, '$1$2').replace(/^(VOI LUT \d+) \(.*\)$/s, '$1');
}

/**
 * A copy of the decoded image whose DICOM part carries no free text: metadata reduced to SIDECAR_METADATA_ALLOWED,
 * LUT explanations dropped, preset labels, the display string and the modality transform without explanations.
 * Pixels are shared, not copied. Non-DICOM images are returned as they are.
 */
export function withoutFreeText(img: DecodedImage): DecodedImage {
  const d = img.dicom;
  if (!d) return img;
  const metadata: Record<string, unknown> = {};
  for (const k of SIDECAR_METADATA_ALLOWED) {
    const v = (d.metadata as unknown as Record<string, unknown>)[k];
    if (v !== undefined) metadata[k] = v;
  }
  const presets = d.presets.map((p) => (p.kind === 'lut' ? { ...p, label: labelWithoutExplanation(p.label), lut: { ...p.lut, explanation: undefined } } : { ...p, label: labelWithoutExplanation(p.label) }));
  const modalityTransform = d.modalityTransform.replace(/^(Modality LUT Sequence \(\d+ entries from -?\d+, \d+-bit), .*\)$/s, '$1)');
  return {
    ...img,
    display: img.display && labelWithoutExplanation(img.display),
    dicom: { ...d, metadata: metadata as unknown as typeof d.metadata, presets, modalityTransform, identifying: {} },
  };
}

/**
 * Free-text values of the original image (descriptions, device names, LUT and window explanations): the final
 * check of a sidecar, which must contain none of them. Values shorter than 3 characters are skipped (too likely to
 * occur by chance in numbers and codes).
 */
export function freeTextValues(img: DecodedImage): string[] {
  const d = img.dicom;
  if (!d) return [];
  const out = new Set<string>();
  const allowed = new Set<string>(SIDECAR_METADATA_ALLOWED);
  for (const [k, v] of Object.entries(d.metadata)) if (!allowed.has(k) && typeof v === 'string') out.add(v.trim());
  for (const p of d.presets) {
    const m = /^(?:Window \d+|VOI LUT \d+) \((.*)\)(?:: C .*)?$/s.exec(p.label);
    if (m) out.add(m[1].trim());
    if (p.kind === 'lut' && p.lut.explanation) out.add(p.lut.explanation.trim());
  }
  return [...out].filter((v) => v.length >= 3);
}

/** `json` with any of `values` replaced by a marker (belt and braces after withoutFreeText). */
export function scrubValues(json: string, values: string[]): string {
  let out = json;
  for (const v of values) {
    const quoted = JSON.stringify(v).slice(1, -1); // as it appears inside a JSON string
    out = out.split(quoted).join(REMOVED);
  }
  return out;
}
