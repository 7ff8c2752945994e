/**
 * What `npm run convert` writes for one decoded image, decided without I/O (app/cli/convert.ts writes the files):
 * the display image exactly as the viewer shows it at its default window (modality LUT, VOI preset, photometric and
 * presentation applied), the modality values at full precision when the source has more than 8 bits, and a JSON
 * sidecar without identifying attributes unless asked.
 */
import type { DecodedImage } from './index';
import { describeSelection, presetOf } from './windowing';

export type ModalityOutput =
  | { kind: 'png16'; width: number; height: number; data: Uint16Array; why: string }
  | { kind: 'npy'; width: number; height: number; data: Float32Array; why: string };

export interface ConversionPlan {
  /** 8-bit display pixels: grey (1 channel) or RGB (3 channels), row-major. */
  display: { width: number; height: number; channels: 1 | 3; data: Uint8Array };
  modality?: ModalityOutput;
  sidecar: Record<string, unknown>;
}

/**
 * Plan the outputs of one image. Modality values go to a 16-bit PNG when they are all integers in 0..65535 (lossless
 * there), else to float32 .npy (negative HU, fractional rescale). Identifying DICOM attributes are in the sidecar only
 * with `keepPhi`.
 */
export function planConversion(img: DecodedImage, opts: { keepPhi?: boolean; source?: string } = {}): ConversionPlan {
  const { width, height } = img;
  const n = width * height;
  const d = img.dicom;
  const colour = d ? !!d.rgb : isColourRaster(img.raster.data);
  const channels = colour ? 3 : 1;
  const data = new Uint8Array(n * channels);
  const src = img.raster.data;
  for (let i = 0; i < n; i++) {
    if (channels === 3) {
      data[i * 3] = src[i * 4];
      data[i * 3 + 1] = src[i * 4 + 1];
      data[i * 3 + 2] = src[i * 4 + 2];
    } else data[i] = src[i * 4];
  }
  const sidecar: Record<string, unknown> = {
    source: opts.source,
    format: img.format,
    width,
    height,
    channels,
  };
  let modality: ModalityOutput | undefined;
  if (d) {
    const preset = presetOf(d);
    sidecar.frames = d.frames;
    sidecar.frame = d.frameIndex + 1;
    sidecar.photometric = d.metadata.PhotometricInterpretation;
    sidecar.transfer_syntax = { uid: d.metadata.TransferSyntaxUID, name: d.metadata.TransferSyntaxName };
    sidecar.codec = d.codec ?? 'native';
    sidecar.bits_stored = d.metadata.BitsStored;
    sidecar.modality_transform = d.modalityTransform;
    sidecar.display = {
      rendered_with: describeSelection(d),
      voi: d.rgb ? null : preset.kind === 'window'
        ? { kind: 'window', center: preset.center, width: preset.width, function: preset.fn, source: preset.source }
        : { kind: 'voi-lut', entries: preset.lut.entries, first_mapped: preset.lut.firstMapped, bits: preset.lut.bits, explanation: preset.lut.explanation ?? null },
      inverted: d.invert,
      presets: d.presets.map((p) => p.label),
    };
    sidecar.modality_range = d.range;
    sidecar.notes = d.notes;
    sidecar.metadata = d.metadata;
    if (opts.keepPhi) sidecar.identifying = d.identifying;
    if (!d.rgb && d.metadata.BitsStored > 8) {
      let integral = true;
      for (let i = 0; i < n && integral; i++) {
        const v = d.pixels[i];
        if (!Number.isInteger(v) || v < 0 || v > 65535) integral = false;
      }
      modality = integral
        ? { kind: 'png16', width, height, data: Uint16Array.from(d.pixels), why: 'modality values are integers in 0..65535' }
        : { kind: 'npy', width, height, data: Float32Array.from(d.pixels), why: 'modality values are negative or fractional' };
      sidecar.modality_output = { kind: modality.kind, why: modality.why };
    }
  }
  return { display: { width, height, channels, data }, modality, sidecar };
}

function isColourRaster(rgba: Uint8ClampedArray): boolean {
  for (let j = 0; j < rgba.length; j += 4) if (rgba[j] !== rgba[j + 1] || rgba[j] !== rgba[j + 2]) return true;
  return false;
}

/** A NumPy .npy (format 1.0) file of float32 values, C order. Reference: numpy.lib.format. */
export function encodeNpyFloat32(data: Float32Array, shape: number[]): Uint8Array {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // magic(6) + version(2) + len(2) + header + '\n', padded to a multiple of 64
  const pad = 64 - ((10 + header.length + 1) % 64);
  header = header + ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  out[8] = header.length & 0xff;
  out[9] = header.length >> 8;
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // Float32Array is platform-endian; every platform this runs on is little-endian, which the header says.
  out.set(body, 10 + header.length);
  return out;
}
