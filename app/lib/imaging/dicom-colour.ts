/**
 * Colour in the DICOM pixel pipeline: three-sample images (RGB, YBR_FULL, YBR_FULL_422; PS3.3 C.7.6.3.1.2) made
 * interleaved 8-bit RGB, and PALETTE COLOR looked up in its Red/Green/Blue Palette Color Lookup Tables, plain or
 * segmented (PS3.3 C.7.6.3.1.5-6, C.7.9). Both also give the ITU-R 601 luma the greyscale code paths use.
 */
import type { DataSet } from 'dicom-parser';
import { ImageDecodeError } from './errors';
import type { DecodedFrame } from './codecs/types';
import { expandSegmentedLut, makeLut, type Lut } from './lut';
import { us, words } from './dicom-parse';
import type { Prepared } from './dicom-prepare';
import type { Photometric } from './dicom-types';

function clamp255(x: number): number {
  return x < 0 ? 0 : x > 255 ? 255 : x;
}

/**
 * YCbCr (full range, PS3.3 C.7.6.3.1.2 YBR_FULL) → RGB, the way pydicom.pixels.processing.convert_color_space
 * does: float, the ITU-R BT.601 matrix, +0.5 then floor, clipped.
 */
export function ybrFullToRgb(ybr: Uint8Array): Uint8Array {
  const out = new Uint8Array(ybr.length);
  const g1 = (-0.114 * 1.772) / 0.587;
  const g2 = (-0.299 * 1.402) / 0.587;
  for (let i = 0; i < ybr.length; i += 3) {
    const y = Math.fround(ybr[i]);
    const cb = Math.fround(ybr[i + 1] - 128);
    const cr = Math.fround(ybr[i + 2] - 128);
    out[i] = clamp255(Math.floor(Math.fround(y + 1.402 * cr) + 0.5));
    out[i + 1] = clamp255(Math.floor(Math.fround(y + g1 * cb + g2 * cr) + 0.5));
    out[i + 2] = clamp255(Math.floor(Math.fround(y + 1.772 * cb) + 0.5));
  }
  return out;
}

/** ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B) of interleaved RGB, one value per pixel. */
export function lumaOf(rgb: Uint8Array, npix: number): Float32Array {
  const px = new Float32Array(npix);
  for (let i = 0; i < npix; i++) px[i] = (rgb[i * 3] * 299 + rgb[i * 3 + 1] * 587 + rgb[i * 3 + 2] * 114) / 1000;
  return px;
}

/**
 * Three-sample stored values (interleaved, colour-by-plane, or native YBR_FULL_422 pairs) → interleaved 8-bit RGB.
 * A codec's frame is interleaved already; `colorConvertedToRgb` says the codec turned YBR into RGB. Throws
 * ImageDecodeError 'unsupported-dicom' for more than 8 bits per sample or a colour space not handled here.
 */
export function colourToRgb(p: Prepared, stored: Int32Array | Float64Array, photometric: Photometric, codecFrame?: DecodedFrame): Uint8Array {
  const { rows, cols, notes } = p;
  const npix = rows * cols;
  if (p.bitsStored > 8) throw new ImageDecodeError('unsupported-dicom', `Colour DICOM with ${p.bitsStored} bits per sample is not supported (8)`);
  const interleaved = new Uint8Array(npix * 3);
  const planar = !codecFrame && p.planarConfig === 1;
  if (!codecFrame && photometric === 'YBR_FULL_422' && stored.length === npix * 2) {
    // Native YBR_FULL_422: Y1 Y2 Cb Cr per horizontal pixel pair (PS3.3 C.7.6.3.1.2); chroma repeated.
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c += 2) {
        const k = (r * cols + c) * 2;
        const y1 = stored[k], y2 = stored[k + 1], cb = stored[k + 2], cr = stored[k + 3];
        const o = (r * cols + c) * 3;
        interleaved[o] = y1; interleaved[o + 1] = cb; interleaved[o + 2] = cr;
        if (c + 1 < cols) { interleaved[o + 3] = y2; interleaved[o + 4] = cb; interleaved[o + 5] = cr; }
      }
    }
  } else if (planar) {
    for (let i = 0; i < npix; i++) {
      interleaved[i * 3] = stored[i];
      interleaved[i * 3 + 1] = stored[npix + i];
      interleaved[i * 3 + 2] = stored[2 * npix + i];
    }
  } else {
    for (let i = 0; i < npix * 3; i++) interleaved[i] = stored[i];
  }
  if (codecFrame?.colorConvertedToRgb || photometric === 'RGB') {
    if (photometric !== 'RGB') notes.push(`Colour decoded to RGB by ${codecFrame?.codec ?? 'the codec'} (the file says ${photometric}, which describes the compressed stream)`);
    return interleaved;
  }
  if (photometric === 'YBR_FULL' || photometric === 'YBR_FULL_422') return ybrFullToRgb(interleaved);
  throw new ImageDecodeError('unsupported-dicom', `Colour conversion from ${photometric} is not supported here`);
}

function tagText(tag: string): string {
  return `(${tag.slice(1, 5).toUpperCase()},${tag.slice(5, 9).toUpperCase()})`;
}

function applyLutOne(lut: Lut, x: number): number {
  let i = x - lut.firstMapped;
  if (i < 0) i = 0;
  else if (i >= lut.entries) i = lut.entries - 1;
  return lut.data[i];
}

/** One channel's Palette Color Lookup Table: descriptor, then segmented or plain data (PS3.3 C.7.6.3.1.5-6). */
function paletteChannel(ds: DataSet, signed: boolean, colour: string, descTag: string, dataTag: string, segTag: string): Lut {
  const d = ds.elements[descTag];
  if (!d) throw new ImageDecodeError('corrupt', 'PALETTE COLOR image without its Palette Color Lookup Table Descriptors');
  const desc: [number, number, number] = [us(ds, descTag, 0)!, us(ds, descTag, 1)!, us(ds, descTag, 2)!];
  const seg = ds.elements[segTag];
  const plain = ds.elements[dataTag];
  // Expanded into at most the descriptor's count (0 means 65,536), never more (PS3.3 C.7.6.3.1.5).
  const name = `Segmented ${colour} Palette Color Lookup Table Data ${tagText(segTag)}`;
  if (seg) return makeLut(desc, expandSegmentedLut(words(ds, seg), desc[2], desc[0] === 0 ? 65536 : desc[0], name), signed);
  if (plain) return makeLut(desc, words(ds, plain), signed);
  throw new ImageDecodeError('corrupt', 'PALETTE COLOR image without Palette Color Lookup Table Data');
}

/**
 * PALETTE COLOR: each stored value looked up in the three channel tables (inputs clamped to the first/last entry).
 * Returns 8-bit RGB (scaled from the tables' bits) and the tables' full-precision values (as pydicom's
 * apply_color_lut), both interleaved. Throws ImageDecodeError 'corrupt' for a missing or malformed table.
 */
export function paletteToRgb(p: Prepared, stored: Int32Array | Float64Array): { rgb: Uint8Array; paletteRgb16: Uint16Array } {
  const { ds, notes } = p;
  const npix = p.rows * p.cols;
  const signed = p.pixelRep === 1;
  const luts = [
    paletteChannel(ds, signed, 'Red', 'x00281101', 'x00281201', 'x00281221'),
    paletteChannel(ds, signed, 'Green', 'x00281102', 'x00281202', 'x00281222'),
    paletteChannel(ds, signed, 'Blue', 'x00281103', 'x00281203', 'x00281223'),
  ];
  const paletteRgb16 = new Uint16Array(npix * 3);
  const rgb = new Uint8Array(npix * 3);
  for (let c = 0; c < 3; c++) {
    const lut = luts[c];
    const scale = 255 / (2 ** lut.bits - 1);
    for (let i = 0; i < npix; i++) {
      const v = applyLutOne(lut, stored[i]);
      paletteRgb16[i * 3 + c] = v;
      rgb[i * 3 + c] = Math.round(v * scale);
    }
  }
  if (ds.elements.x00281221) notes.push('Segmented palette colour lookup tables expanded (PS3.3 C.7.9.2)');
  return { rgb, paletteRgb16 };
}
