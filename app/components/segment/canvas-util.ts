/** DOM helpers of the segment views: a raster on a canvas, lib-painted overlays into a canvas, file downloads. */
import type { Raster } from '../../lib/imaging/raster';
import { maskBounds, paintMaskOverlay, unionBounds, type OverlayMask } from '../../lib/sam';

/** A canvas holding the raster's pixels (drawn once per raster, then blitted). */
export function rasterCanvas(r: Raster): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = r.width;
  c.height = r.height;
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(r.data), r.width, r.height), 0, 0);
  return c;
}

/**
 * Paint masks (app/lib/sam/overlay.ts) into `c`, resized to w×h: only the rectangle holding the masks' bounds is
 * painted and uploaded (the rest is cleared), a fraction of an adult X-ray for a lung.
 */
export function drawOverlay(c: HTMLCanvasElement, w: number, h: number, masks: OverlayMask[]): CanvasRenderingContext2D {
  if (c.width !== w) c.width = w;
  if (c.height !== h) c.height = h;
  const ctx = c.getContext('2d')!;
  ctx.clearRect(0, 0, w, h);
  const r = unionBounds(masks.map((m) => (m.mask.length === w * h ? maskBounds(m.mask, w, h) : [0, 0, w, h])));
  if (!r) return ctx;
  const img = ctx.createImageData(r[2] - r[0], r[3] - r[1]);
  paintMaskOverlay(img.data, w, h, masks, true, r);
  ctx.putImageData(img, r[0], r[1]);
  return ctx;
}

export function saveFiles(files: { name: string; blob: Blob }[]) {
  for (const f of files) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(f.blob);
    a.download = f.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }
}
