/** Masks as PNG files (the cxr-lung-masks convention), through the imaging PNG encoder. */
import { encodePng } from '../imaging/png-encode';

/** A 0/1 mask → 8-bit gray PNG with 255 for the mask (the cxr-lung-masks convention), 0 elsewhere. */
export function maskToPng(mask: Uint8Array, w: number, h: number): Uint8Array {
  const g = new Uint8Array(w * h);
  for (let i = 0; i < g.length; i++) g[i] = mask[i] ? 255 : 0;
  return encodePng(g, w, h, 1);
}
