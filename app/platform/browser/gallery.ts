/**
 * Browser adapters of the generate gallery: its history in IndexedDB (idb-keyval), PNG encoding/decoding with
 * OffscreenCanvas, and saving a file through a download link.
 */
import { del as idbDel, get as idbGet, getMany, keys as idbKeys, set as idbSet } from 'idb-keyval';

/** The history as it was stored before one key per run (read once, moved to per-run keys, then deleted). */
const LEGACY_HISTORY_KEY = 'cxr-gallery-runs';
const RUN_PREFIX = 'cxr-gallery-run:';

/**
 * Every stored gallery run (one IndexedDB key per run; a legacy whole-history array is moved to per-run keys first,
 * and deleted only after every run of it was written). Throws when IndexedDB cannot be read: the caller must then
 * not treat the history as empty.
 */
export async function loadGalleryRuns<T extends { id: string }>(): Promise<T[]> {
  const legacy = await idbGet<T[]>(LEGACY_HISTORY_KEY);
  if (legacy?.length) {
    for (const r of legacy) await idbSet(RUN_PREFIX + r.id, r);
    await idbDel(LEGACY_HISTORY_KEY);
  }
  const ks = (await idbKeys()).filter((k): k is string => typeof k === 'string' && k.startsWith(RUN_PREFIX));
  return (await getMany<T>(ks)).filter((r): r is T => !!r);
}

/** Write one run under its own key (never the whole history: a failed read elsewhere cannot erase other runs). */
export async function saveGalleryRun<T extends { id: string }>(run: T): Promise<void> {
  await idbSet(RUN_PREFIX + run.id, run);
}

/** Delete one run's key. */
export async function deleteGalleryRun(id: string): Promise<void> {
  await idbDel(RUN_PREFIX + id);
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

/** PNG file bytes -> a data: URL (kept with the run in IndexedDB, shown by an <img>). */
export async function pngDataUrl(png: Uint8Array): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error('FileReader failed'));
    r.readAsDataURL(new Blob([png as BlobPart], { type: 'image/png' }));
  });
}

/** A PNG data: URL -> RGBA. */
export async function pngToRgba(url: string): Promise<{ width: number; height: number; data: Uint8ClampedArray }> {
  // decoded from the URL's own bytes: a fetch() of a data: URL is refused under the page's connect-src policy
  const comma = url.indexOf(',');
  if (!url.startsWith('data:image/png;base64,') || comma < 0) throw new Error('not a PNG data: URL');
  const bin = atob(url.slice(comma + 1));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
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
