/**
 * The shared second half of the DICOM pixel pipeline: stored values → colour (./dicom-colour) or modality values
 * (./dicom-modality) → display presets and inversion (./dicom-voi) → DicomImage with its metadata and notes.
 */
import type { DecodedFrame } from './codecs/types';
import { str } from './dicom-parse';
import type { Prepared } from './dicom-prepare';
import type { DicomImage, Photometric } from './dicom-types';
import { colourToRgb, lumaOf, paletteToRgb } from './dicom-colour';
import { modalityValues, valueRange } from './dicom-modality';
import { presentationInversion, voiPresets } from './dicom-voi';
import { collectIdentifying, collectMetadata } from './dicom-metadata';

/**
 * One frame's stored values (from native bytes, RLE or a codec's `codecFrame`) → DicomImage. Throws
 * ImageDecodeError 'unsupported-dicom' or 'corrupt' for colour and palette data it cannot use.
 */
export function finish(p: Prepared, stored: Int32Array | Float64Array, codecFrame?: DecodedFrame): DicomImage {
  const { ds, rows, cols, spp, notes } = p;
  const npix = rows * cols;
  let photometric = p.photometricRaw as Photometric;
  let rgb: Uint8Array | undefined;
  let paletteRgb16: Uint16Array | undefined;
  let pixels: Float32Array;
  let modalityTransform = 'none (colour)';

  if (spp === 3) {
    rgb = colourToRgb(p, stored, photometric, codecFrame);
    pixels = lumaOf(rgb, npix);
  } else if (photometric === 'PALETTE COLOR') {
    ({ rgb, paletteRgb16 } = paletteToRgb(p, stored));
    pixels = lumaOf(rgb, npix);
  } else {
    ({ pixels, modalityTransform } = modalityValues(p, stored));
  }
  const grey = !rgb;
  const { min, max } = valueRange(p, stored, pixels, grey);
  const voi = voiPresets(p, min, max, grey);
  const { invert, shape } = presentationInversion(p, photometric, grey);
  if (photometric === 'YBR_RCT' || photometric === 'YBR_ICT') photometric = 'RGB';

  const metadata = collectMetadata(p, voi.voiRaw, shape);
  const identifying = collectIdentifying(ds);
  if (codecFrame) notes.push(`Decoded from ${p.tsName} with ${codecFrame.codec}`);
  // PS3.3 C.7.6.1.1.5: the image has been lossy-compressed at some point (maybe before this file's syntax)
  if (str(ds, 'x00282110')?.trim() === '01') {
    const method = str(ds, 'x00282114');
    const ratio = str(ds, 'x00282112');
    notes.push(`Lossy Image Compression: this image has been lossy-compressed${method ? ` (${method.replace(/\\/g, ', ')})` : ''}${ratio ? `, ratio ${ratio.replace(/\\/g, ', ')}:1` : ''}`);
  }
  return {
    width: cols,
    height: rows,
    frames: p.frames,
    frameIndex: p.frameIndex,
    pixels,
    rgb,
    paletteRgb16,
    window: voi.window,
    windowSource: voi.windowSource,
    presets: voi.presets,
    defaultPresetId: voi.defaultPreset.id,
    photometric,
    voiLutFunction: voi.voiLutFunction,
    invert,
    range: { min, max },
    modalityTransform,
    codec: codecFrame?.codec,
    metadata,
    identifying,
    notes,
  };
}
