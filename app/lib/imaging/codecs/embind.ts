/**
 * The decoder shape shared by Cornerstone's Emscripten codec builds (codec-libjpeg-turbo-8bit, codec-charls,
 * codec-openjpeg, codec-openjph): allocate the encoded buffer inside wasm memory, decode, read the frame info and
 * copy the decoded buffer out (the next decode reuses that memory).
 */
import { copyOut, typedSamples, type DecodedFrame } from './types';

export interface EmbindFrameInfo {
  width: number;
  height: number;
  bitsPerSample: number;
  componentCount: number;
  isSigned?: boolean;
}

export interface EmbindDecoder {
  getEncodedBuffer(length: number): Uint8Array;
  getDecodedBuffer(): Uint8Array;
  getFrameInfo(): EmbindFrameInfo;
  decode(): void;
  delete?(): void;
}

export function runEmbindDecoder(
  decoder: EmbindDecoder,
  frame: Uint8Array,
  codec: string,
  opts: { signed: boolean; colorConvertedToRgb: boolean; describeError?: (e: unknown) => string; beforeDelete?: () => void },
): DecodedFrame {
  try {
    decoder.getEncodedBuffer(frame.length).set(frame);
    decoder.decode();
    const info = decoder.getFrameInfo();
    const bytes = copyOut(decoder.getDecodedBuffer());
    opts.beforeDelete?.();
    const signed = info.isSigned ?? opts.signed;
    return {
      width: info.width,
      height: info.height,
      samplesPerPixel: info.componentCount,
      bitsPerSample: info.bitsPerSample,
      samples: typedSamples(bytes, info.bitsPerSample, signed),
      colorConvertedToRgb: opts.colorConvertedToRgb && info.componentCount === 3,
      codec,
    };
  } catch (e) {
    // Emscripten throws a pointer (number) for C++ exceptions; the glue can turn it into the codec's own message.
    const msg = opts.describeError ? opts.describeError(e) : e instanceof Error ? e.message : String(e);
    throw new Error(msg, { cause: e });
  } finally {
    decoder.delete?.();
  }
}

/** Emscripten exception pointers → message, when the build exports getExceptionMessage. */
export function emscriptenMessage(mod: unknown, e: unknown): string {
  if (typeof e === 'number') {
    const get = (mod as { getExceptionMessage?: (p: number) => unknown }).getExceptionMessage;
    if (get) {
      const m = get(e);
      return Array.isArray(m) ? m.filter(Boolean).join(': ') : String(m);
    }
    return `codec exception ${e}`;
  }
  return e instanceof Error ? e.message : String(e);
}
