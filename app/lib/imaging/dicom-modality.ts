/**
 * The Modality LUT stage of the DICOM pixel pipeline (PS3.3 C.11.1): stored values → modality values through the
 * Modality LUT Sequence or Rescale Slope/Intercept; and the range of the result with Pixel Padding Value / Range
 * Limit left out (PS3.3 C.7.5.1.1.2).
 */
import type { DataSet } from 'dicom-parser';
import { applyLut } from './lut';
import { lutFrom, num, str, us } from './dicom-parse';
import type { Prepared } from './dicom-prepare';

/**
 * Modality values, one Float32 per pixel, and how they were made ("Rescale 1·x + 0", "Modality LUT Sequence (...)").
 * The Modality LUT Sequence wins over Rescale Slope/Intercept when a file has both (with a note).
 */
export function modalityValues(p: Prepared, stored: Int32Array | Float64Array): { pixels: Float32Array; modalityTransform: string } {
  const { ds, notes } = p;
  const npix = p.rows * p.cols;
  const mlutSeq = ds.elements.x00283000?.items?.[0]?.dataSet;
  const mlut = mlutSeq ? lutFrom(mlutSeq, 'x00283002', 'x00283006', p.pixelRep === 1, 'x00283003') : undefined;
  if (mlut) {
    const pixels = applyLut(mlut, stored);
    const modalityTransform = `Modality LUT Sequence (${mlut.entries} entries from ${mlut.firstMapped}, ${mlut.bits}-bit${mlut.explanation ? `, ${mlut.explanation}` : ''})`;
    if (ds.elements.x00281053 || ds.elements.x00281052) notes.push('The file has both a Modality LUT Sequence and Rescale Slope/Intercept; the LUT is used (PS3.3 C.11.1)');
    return { pixels, modalityTransform };
  }
  let slope = num(ds, 'x00281053') ?? 1;
  let intercept = num(ds, 'x00281052') ?? 0;
  if (slope === 0 || !Number.isFinite(slope) || !Number.isFinite(intercept)) {
    // A zero slope maps every pixel to the intercept: a blank image that looks decoded. pydicom applies it as it is;
    // dcmtk (DiMonoModality) warns and ignores the rescale, which keeps the image: done here, with a note.
    notes.push(`Rescale Slope (0028,1053) ${slope}${Number.isFinite(intercept) ? '' : ` and Rescale Intercept (0028,1052) ${intercept}`} would ${slope === 0 ? `map every pixel to ${intercept}` : 'give no finite values'}; the rescale is ignored (stored values shown), as dcmtk does`);
    slope = 1;
    intercept = 0;
  }
  const pixels = new Float32Array(npix);
  for (let i = 0; i < npix; i++) pixels[i] = stored[i] * slope + intercept;
  const modalityTransform = `Rescale ${slope}·x + ${intercept}${str(ds, 'x00281054') ? ` (${str(ds, 'x00281054')})` : ''}`;
  return { pixels, modalityTransform };
}

/** [lo, hi] of stored values that are padding, from Pixel Padding Value and Pixel Padding Range Limit. */
function paddingRange(ds: DataSet, signed: boolean): [number, number] | undefined {
  const a = us(ds, 'x00280120');
  if (a === undefined) return undefined;
  const b = us(ds, 'x00280121') ?? a;
  const sv = (x: number) => (signed && x > 32767 ? x - 65536 : x); // US or SS, as Pixel Representation says
  const [lo, hi] = [sv(a), sv(b)];
  return lo <= hi ? [lo, hi] : [hi, lo];
}

/**
 * Minimum and maximum of `pixels`, leaving out (greyscale only) the pixels whose stored value is padding: the area
 * outside a CR/DX collimation, which would otherwise flatten the default display. All padding: all values count.
 */
export function valueRange(p: Prepared, stored: Int32Array | Float64Array, pixels: Float32Array, grey: boolean): { min: number; max: number } {
  const npix = p.rows * p.cols;
  const padding = grey ? paddingRange(p.ds, p.pixelRep === 1) : undefined;
  let min = Infinity, max = -Infinity;
  let padded = 0;
  for (let i = 0; i < npix; i++) {
    if (padding && stored[i] >= padding[0] && stored[i] <= padding[1]) {
      padded++;
      continue;
    }
    const v = pixels[i];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (padding && padded > 0) {
    if (padded === npix) {
      // everything is padding: fall back to all values rather than show nothing
      for (let i = 0; i < npix; i++) {
        min = Math.min(min, pixels[i]);
        max = Math.max(max, pixels[i]);
      }
    }
    p.notes.push(`${padded} pixels are padding (Pixel Padding Value ${padding[0] === padding[1] ? padding[0] : `${padding[0]}..${padding[1]}`}); the full range leaves them out`);
  }
  if (grey && npix > 1 && min === max) {
    p.notes.push(`Every pixel${padded ? ' outside the padding' : ''} has the same modality value (${min}): the image is blank as stored, not a decoding fault`);
  }
  return { min, max };
}
