/**
 * Which codec package decodes which transfer syntax (PS3.5 Annex A.4, PS3.6 Annex A). One module per package; the
 * wasm each needs is injected (see ./types WasmBinaryLoader). Syntaxes absent from CODEC_FOR_SYNTAX and from the
 * native ones in ../dicom.ts are refused by name (./syntaxes REFUSED_SYNTAXES says why).
 */
import { charls } from './charls';
import { dcmjsJpeg12 } from './dcmjs-codecs';
import { jpegLossless } from './jpeg-lossless';
import { libjpegTurbo8bit } from './libjpeg-turbo-8bit';
import { openjpeg } from './openjpeg';
import { openjph } from './openjph';
import { CODEC_SYNTAXES } from './syntaxes';
import type { EncodedFrameInfo, FrameCodec } from './types';

export * from './types';
export * from './syntaxes';
export { decodeRleFrame, rlePlanesToSamples } from './rle';

export interface CodecEntry {
  /** Lossless syntaxes must equal pydicom exactly; lossy ones within a documented tolerance (see the tests). */
  lossless: boolean;
  pick(info: EncodedFrameInfo): FrameCodec;
}

const PICKS: Record<string, CodecEntry['pick']> = {
  // JPEG Baseline is 8-bit by definition; Extended (Process 2 & 4) is 8- or 12-bit: the 8-bit libjpeg-turbo build
  // cannot take 12-bit samples, so BitsStored > 8 goes to dcmjs-codecs' 12-bit IJG build.
  '1.2.840.10008.1.2.4.50': () => libjpegTurbo8bit,
  '1.2.840.10008.1.2.4.51': (i) => (i.bitsStored > 8 ? dcmjsJpeg12 : libjpegTurbo8bit),
  '1.2.840.10008.1.2.4.57': () => jpegLossless,
  '1.2.840.10008.1.2.4.70': () => jpegLossless,
  '1.2.840.10008.1.2.4.80': () => charls,
  '1.2.840.10008.1.2.4.81': () => charls,
  '1.2.840.10008.1.2.4.90': () => openjpeg,
  '1.2.840.10008.1.2.4.91': () => openjpeg,
  '1.2.840.10008.1.2.4.201': () => openjph,
  '1.2.840.10008.1.2.4.202': () => openjph,
  '1.2.840.10008.1.2.4.203': () => openjph,
};

export const CODEC_FOR_SYNTAX: Record<string, CodecEntry> = Object.fromEntries(
  Object.entries(CODEC_SYNTAXES).map(([uid, { lossless }]) => [uid, { lossless, pick: PICKS[uid] }]),
);
