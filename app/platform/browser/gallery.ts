/**
 * Browser adapters of the generate gallery: its history in IndexedDB (idb-keyval), PNG encoding/decoding with
 * OffscreenCanvas, and saving a file through a download link.
 */
import { get as idbGet, set as idbSet } from 'idb-keyval';

const HISTORY_KEY = 'cxr-gallery-runs';

export async function loadGalleryRuns<T>(): Promise<T[]> {
  return (await idbGet<T[]>(HISTORY_KEY)) ?? [];
}

export async function saveGalleryRuns<T>(runs: T[]): Promise<void> {
  await idbSet(HISTORY_KEY, runs);
}

/** RGBA -> PNG (Blob and data: URL). */
export async function rgbaToPng(width: number, height: number, rgba: Uint8ClampedArray): Promise<{ url: string; blob: Blob }> {
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext('2d');
  if (!ctx) throw new Error('no 2D canvas context to encode the PNG');
  ctx.putImageData(new ImageData(new Uint8ClampedArray(rgba), width, height), 0, 0);
  const blob = await canvas.convertToBlob({ type: 'image/png' });
  const url = await new Promise<string>((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error('FileReader failed'));
    r.readAsDataURL(blob);
  });
  return { url, blob };
}

/** A PNG data: URL -> RGBA. */
export async function pngToRgba(url: string): Promise<{ width: number; height: number; data: Uint8ClampedArray }> {
  const bmp = await createImageBitmap(await (await fetch(url)).blob());
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d');
  if (!ctx) throw new Error('no 2D canvas context to decode the PNG');
  ctx.drawImage(bmp, 0, 0);
  return { width: bmp.width, height: bmp.height, data: ctx.getImageData(0, 0, bmp.width, bmp.height).data };
}

/** Offer a Blob as a downloaded file. */
export function saveBlob(blob: Blob, name: string): void {
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}
