/**
 * The VOI and Presentation stages of the DICOM pixel pipeline: the display choices a file offers (VOI LUT Sequence
 * items, Window Center/Width pairs with their VOI LUT Function; PS3.3 C.11.2), the full range, which one is shown by
 * default, and whether the display is inverted (MONOCHROME1, Presentation LUT Shape; PS3.3 C.11.6).
 */
import { lutFrom, nums, str, strAt } from './dicom-parse';
import type { Prepared } from './dicom-prepare';
import type { DicomWindow, Photometric, VoiFunction, VoiPreset } from './dicom-types';

/**
 * The window that, under the DICOM LINEAR function (PS3.3 C.11.2.1.2.1), maps `min` to black and `max` to white:
 * c − 0.5 − (w−1)/2 = min and c − 0.5 + (w−1)/2 = max, i.e. w = max − min + 1, c = min + w/2.
 * For an 8-bit image spanning 0..255 this is the classic c=128, w=256.
 */
export function autoWindow(min: number, max: number): DicomWindow {
  if (!Number.isFinite(min) || !Number.isFinite(max) || max < min) return { center: 0.5, width: 1 };
  const width = max - min + 1;
  return { center: min + width / 2, width };
}

/** A number for labels and notes: integers as they are, others to 3 decimals. */
export function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : String(Math.round(x * 1000) / 1000);
}

/** 'below'/'above' when every value in [min, max] maps to one end of the preset; undefined when it shows something. */
function presetShowsNothing(q: VoiPreset, min: number, max: number): 'below' | 'above' | undefined {
  if (q.kind === 'lut') return undefined;
  if (q.fn === 'SIGMOID') return undefined;
  const lo = q.fn === 'LINEAR_EXACT' ? q.center - q.width / 2 : q.center - 0.5 - (q.width - 1) / 2;
  const hi = q.fn === 'LINEAR_EXACT' ? q.center + q.width / 2 : q.center - 0.5 + (q.width - 1) / 2;
  if (min > hi) return 'below';
  if (max <= lo) return 'above';
  return undefined;
}

export interface VoiChoice {
  presets: VoiPreset[];
  defaultPreset: VoiPreset;
  window: DicomWindow;
  windowSource: 'file' | 'auto';
  voiLutFunction: VoiFunction;
  /** VOI LUT Function (0028,1056) as written, upper-cased ('LINEAR' when absent). */
  voiRaw: string;
}

/**
 * The display presets, file's first (VOI LUT Sequence items, then windows; greyscale only), then the full range
 * [min, max]; the default is the file's first unless it would show a blank image. Windows PS3.3 C.11.2.1.2 does not
 * allow (width ≤ 0, or < 1 under LINEAR) are skipped with a note.
 */
export function voiPresets(p: Prepared, min: number, max: number, grey: boolean): VoiChoice {
  const { ds, notes } = p;
  const voiRaw = (str(ds, 'x00281056') ?? 'LINEAR').toUpperCase().trim();
  const voiLutFunction: VoiFunction = voiRaw === 'SIGMOID' || voiRaw === 'LINEAR_EXACT' ? voiRaw : 'LINEAR';
  if (ds.elements.x00281056 && voiRaw !== voiLutFunction) notes.push(`Unknown VOI LUT Function "${voiRaw}"; LINEAR used`);
  const presets: VoiPreset[] = [];
  if (grey) {
    const voiItems = ds.elements.x00283010?.items ?? [];
    voiItems.forEach((item, k) => {
      const lut = item.dataSet ? lutFrom(item.dataSet, 'x00283002', 'x00283006', p.pixelRep === 1 && !ds.elements.x00283000, 'x00283003') : undefined;
      if (lut) presets.push({ id: `voi-lut-${k + 1}`, kind: 'lut', lut, source: 'file', label: `VOI LUT ${k + 1}${lut.explanation ? ` (${lut.explanation})` : ''}` });
    });
    const centers = nums(ds, 'x00281050');
    const widths = nums(ds, 'x00281051');
    for (let k = 0; k < Math.min(centers.length, widths.length); k++) {
      const width = widths[k];
      if (!(width > 0) || (voiLutFunction === 'LINEAR' && width < 1)) {
        notes.push(`Window ${k + 1} has width ${width}, which PS3.3 C.11.2.1.2 does not allow; skipped`);
        continue;
      }
      const expl = strAt(ds, 'x00281055', k);
      presets.push({ id: `window-${k + 1}`, kind: 'window', center: centers[k], width, fn: voiLutFunction, source: 'file', label: `Window ${k + 1}${expl ? ` (${expl})` : ''}: C ${fmt(centers[k])} / W ${fmt(width)}` });
    }
  }
  const auto = autoWindow(min, max);
  presets.push({ id: 'full-range', kind: 'window', center: auto.center, width: auto.width, fn: 'LINEAR', source: 'auto', label: `Full range ${fmt(min)}..${fmt(max)}: C ${fmt(auto.center)} / W ${fmt(auto.width)}` });

  // Default: the file's first choice, unless it shows nothing (every pixel on one side of the window).
  let defaultPreset = presets[0];
  if (grey && defaultPreset.source === 'file') {
    const useless = presetShowsNothing(defaultPreset, min, max);
    if (useless) {
      notes.push(`The file's ${defaultPreset.label.split(':')[0]} lies entirely ${useless} the pixel values (${fmt(min)}..${fmt(max)}) and would show a blank image; the full range is shown by default`);
      defaultPreset = presets[presets.length - 1];
    }
  }
  const fileWindow = presets.find((q) => q.kind === 'window' && q.source === 'file') as Extract<VoiPreset, { kind: 'window' }> | undefined;
  const winPreset = defaultPreset.kind === 'window' ? defaultPreset : fileWindow ?? (presets[presets.length - 1] as Extract<VoiPreset, { kind: 'window' }>);
  return { presets, defaultPreset, window: { center: winPreset.center, width: winPreset.width }, windowSource: winPreset.source, voiLutFunction, voiRaw };
}

/**
 * Presentation (PS3.3 C.11.6): MONOCHROME1 is displayed inverted; so is MONOCHROME2 with Presentation LUT Shape
 * INVERSE (INVERSE on MONOCHROME1 inverts once). Returns the decision and the shape as written.
 */
export function presentationInversion(p: Prepared, photometric: Photometric, grey: boolean): { invert: boolean; shape?: string } {
  const shape = str(p.ds, 'x20500020')?.toUpperCase().trim();
  let invert = photometric === 'MONOCHROME1';
  if (shape === 'INVERSE' && grey) {
    if (photometric === 'MONOCHROME2') invert = true;
    p.notes.push(photometric === 'MONOCHROME1' ? 'Presentation LUT Shape INVERSE on MONOCHROME1: displayed inverted once (PS3.3 C.11.6.1)' : 'Presentation LUT Shape INVERSE: displayed inverted');
  }
  return { invert, shape };
}
