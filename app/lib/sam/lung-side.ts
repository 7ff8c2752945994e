/**
 * Which lung a mask is, from where it lies in the image. On a frontal chest radiograph (PA or AP, DICOM
 * ViewPosition 0018,5101; PNG/JPEG chest X-rays are frontal by convention) the image is displayed as if facing the
 * patient: the patient's right is on the image's LEFT (radiological convention, IHE / ACR display of chest films).
 * A lateral view (LL, RL, LATERAL...) has no left/right split, so no side is named there.
 */

import { maskBounds } from './mask-upscale';

export type LungSide = 'right lung' | 'left lung';

/** Share of a mask's pixels that must lie in one half of the image for the mask to be named after that side. */
export const SIDE_SHARE = 0.8;

/** True for a ViewPosition that is frontal (or unknown, as PNG/JPEG chest X-rays are): PA, AP, PA/AP variants. */
export function isFrontalView(viewPosition: string | undefined): boolean {
  if (!viewPosition) return true;
  const v = viewPosition.trim().toUpperCase();
  return v === '' || v === 'PA' || v === 'AP' || v.startsWith('PA') || v.startsWith('AP');
}

/**
 * The lung a mask (w·h, non-zero = inside) is, by the share of its pixels on each half of the image: at least
 * SIDE_SHARE in the image's left half → the patient's 'right lung', in the right half → 'left lung'. Undefined for an
 * empty mask, a mask spread across both halves (both lungs, the heart) or a non-frontal view.
 */
export function lungSideOf(mask: ArrayLike<number>, w: number, h: number, viewPosition?: string): LungSide | undefined {
  if (!isFrontalView(viewPosition) || mask.length !== w * h) return undefined;
  let left = 0;
  let total = 0;
  const half = w / 2;
  // only the mask's bounds (remembered from the upscale, else one scan): nothing is outside them
  const b = maskBounds(mask, w, h);
  if (!b) return undefined;
  for (let y = b[1]; y < b[3]; y++) {
    const row = y * w;
    for (let x = b[0]; x < b[2]; x++) {
      if (!mask[row + x]) continue;
      total++;
      // a pixel's centre at x + 0.5: the middle column of an odd width counts half to each side
      if (x + 0.5 < half) left++;
      else if (x + 0.5 === half) left += 0.5;
    }
  }
  if (!total) return undefined;
  if (left / total >= SIDE_SHARE) return 'right lung';
  if ((total - left) / total >= SIDE_SHARE) return 'left lung';
  return undefined;
}
