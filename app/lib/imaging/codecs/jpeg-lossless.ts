/**
 * JPEG Lossless, Non-Hierarchical (Process 14, 1.2.840.10008.1.2.4.57, any predictor 1–7) and its Selection Value 1
 * subset (.70) through jpeg-lossless-decoder-js (pure JS, ISO/IEC 10918-1 Annex H). Bit-exact.
 */
import { typedSamples, type FrameCodec } from './types';

const PACKAGE = 'jpeg-lossless-decoder-js';

export const jpegLossless: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, info) {
    const { Decoder } = await import('jpeg-lossless-decoder-js');
    const decoder = new Decoder();
    // Copy: the decoder reads from an ArrayBuffer and the frame may be a view into the whole file.
    const own = new Uint8Array(frame); // a copy (Buffer#slice would be a view)
    const bytesPerSample = info.bitsAllocated <= 8 ? 1 : 2;
    const out = decoder.decode(own.buffer, 0, own.length, bytesPerSample);
    const precision = decoder.frame.precision;
    const components = decoder.frame.numComp;
    const width = decoder.frame.dimX;
    const height = decoder.frame.dimY;
    const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    const samples = bytesPerSample === 1
      ? typedSamples(bytes, 8, info.pixelRepresentation === 1)
      : typedSamples(bytes, 16, info.pixelRepresentation === 1);
    return { width, height, samplesPerPixel: components, bitsPerSample: precision, samples, colorConvertedToRgb: false, codec: PACKAGE };
  },
};
