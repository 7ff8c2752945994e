/** DOM helpers of the segment views: a raster on a canvas, lib-painted overlays into a canvas, file downloads. */
import type { Raster } from '../../lib/imaging/raster';
import { paintMaskOverlay, type OverlayMask } from '../../lib/sam';

/** A canvas holding the raster's pixels (drawn once per raster, then blitted). */
export function rasterCanvas(r: Raster): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = r.width;
  c.height = r.height;
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(r.data), r.width, r.height), 0, 0);
  return c;
}

/** Paint masks (app/lib/sam/overlay.ts) into `c`, resized to w×h. */
export function drawOverlay(c: HTMLCanvasElement, w: number, h: number, masks: OverlayMask[]): CanvasRenderingContext2D {
  if (c.width !== w) c.width = w;
  if (c.height !== h) c.height = h;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(w, h);
  paintMaskOverlay(img.data, w, h, masks, true);
  ctx.putImageData(img, 0, 0);
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
