/** Comparisons of our DICOM decode with pydicom's (see ./pydicom.ts), shared by the DICOM test files. */
import { decodeDicomAsync, renderGray, type DicomImage, type VoiPreset } from '../../../app/lib/imaging';
import { nodeWasmLoader } from '../../../app/platform/node/decode';
import type { PydicomRef } from './pydicom';

export interface PixelComparison {
  /** What was compared: modality values, RGB, palette RGB. */
  what: string;
  /** Max |ours − pydicom| over all frames (modality: beyond float32 rounding of the value). */
  worst: number;
  images: DicomImage[];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, offset: number): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[offset + i]);
    if (Number.isNaN(d)) return Infinity;
    if (d > m) m = d;
  }
  return m;
}

/** Decode every frame and compare it with pydicom's pixel_array → modality LUT / RGB / apply_color_lut. */
export async function comparePixels(bytes: Uint8Array, ref: PydicomRef): Promise<PixelComparison> {
  const frames = ref.info.frames ?? 1;
  let worst = 0;
  let what = '';
  const images: DicomImage[] = [];
  for (let f = 0; f < frames; f++) {
    const img = await decodeDicomAsync(bytes, { loadWasm: nodeWasmLoader, frame: f });
    images.push(img);
    const npix = img.width * img.height;
    if (ref.info.photometric === 'PALETTE COLOR') {
      worst = Math.max(worst, maxAbsDiff(img.paletteRgb16!, ref.get('rgb').data, f * npix * 3));
      what = 'palette RGB (16-bit)';
    } else if (img.rgb) {
      worst = Math.max(worst, maxAbsDiff(img.rgb, ref.get('pixel').data, f * npix * 3));
      what = 'RGB';
    } else {
      const modality = ref.get('modality').data;
      for (let i = 0; i < npix; i++) {
        const r = modality[f * npix + i];
        const e = Math.abs(img.pixels[i] - r);
        if (Number.isNaN(e)) worst = Infinity;
        else if (e > Math.abs(r) * 1e-6 + 1e-6) worst = Math.max(worst, e);
      }
      what = 'modality values';
    }
  }
  return { what, worst, images };
}

/**
 * Our 8-bit display of a preset on pydicom's own modality values vs pydicom's apply_voi_lut / apply_windowing
 * (`kind` 'voi' or 'window'), normalised to 0..255: pydicom maps windows into the stored range [y_min, y_max]
 * (BitsStored, after rescale) and returns VOI LUT output raw. Presentation (inversion) is left out: pydicom does
 * not apply it. Returns the max difference in grey levels (ours is rounded, so ≤ 0.5 is exact).
 */
export function compareVoi(img: DicomImage, ref: PydicomRef, kind: 'voi' | 'window', preset: VoiPreset): number {
  const r = ref.get(kind).data;
  const md = img.metadata;
  const bits = md.BitsStored;
  const signed = md.PixelRepresentation === 1;
  let ymin = signed ? -(2 ** (bits - 1)) : 0;
  let ymax = signed ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  ymin = ymin * md.RescaleSlope + md.RescaleIntercept;
  ymax = ymax * md.RescaleSlope + md.RescaleIntercept;
  const norm = preset.kind === 'lut' ? (v: number) => (v * 255) / (2 ** preset.lut.bits - 1) : (v: number) => ((v - ymin) / (ymax - ymin)) * 255;
  const modality = ref.get('modality').data;
  const npix = img.width * img.height;
  const ours = renderGray({ ...img, pixels: Float32Array.from(modality.subarray(0, npix) as ArrayLike<number>), invert: false }, { presetId: preset.id });
  let worst = 0;
  for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - norm(r[i])));
  return worst;
}
