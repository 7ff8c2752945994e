/**
 * The contract between the DICOM pixel pipeline (../dicom.ts) and the codec packages. Each codec module in this
 * folder wraps exactly one maintained codec package; none of them touches the DOM, fetch or the file system: the
 * WebAssembly binary a codec needs is handed in by platform code through a WasmBinaryLoader (the browser fetches
 * the app's own copy, Node reads node_modules), so the same module runs in the imaging worker, the CLI and vitest.
 */

/** The WebAssembly binaries the codec packages ship (decode-only builds where the package has one). */
export type CodecWasmName = 'libjpeg-turbo-8bit' | 'charls' | 'openjpeg' | 'openjph' | 'dcmjs-native-codecs';

/** Returns the bytes of a codec's .wasm file; called at most once per codec per realm (the module is cached). */
export type WasmBinaryLoader = (name: CodecWasmName) => Promise<ArrayBuffer | Uint8Array>;

/** What the DICOM header says about the frame, for codecs whose bitstream does not say it all. */
export interface EncodedFrameInfo {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: number;
  bitsStored: number;
  /** 0 unsigned, 1 two's complement (PS3.3 C.7.6.3.1.2 Pixel Representation). */
  pixelRepresentation: number;
}

/** One decoded frame: samples interleaved per pixel (colour-by-pixel), row-major. */
export interface DecodedFrame {
  width: number;
  height: number;
  samplesPerPixel: number;
  /** Bit depth the bitstream declared (SOF precision, J2K SIZ Ssiz, JPEG-LS P). */
  bitsPerSample: number;
  samples: Uint8Array | Int8Array | Uint16Array | Int16Array;
  /**
   * True when the codec has already turned the bitstream's YCbCr into RGB (JPEG baseline colour, JPEG 2000 with
   * its multiple-component transform): the DICOM Photometric Interpretation (YBR_FULL_422, YBR_ICT, YBR_RCT) then
   * describes the compressed stream, not these samples (PS3.5 8.2.1, 8.2.4).
   */
  colorConvertedToRgb: boolean;
  /** The package that decoded the frame, e.g. "@cornerstonejs/codec-charls". */
  codec: string;
}

export interface FrameCodec {
  /** Package name (for notes, errors and the README's Libraries table). */
  readonly packageName: string;
  /** Decode one frame's compressed bytes (a complete codestream). Throws Error with the codec's message. */
  decode(frame: Uint8Array, info: EncodedFrameInfo, loadWasm: WasmBinaryLoader): Promise<DecodedFrame>;
}

export function copyOut(view: Uint8Array): Uint8Array {
  const out = new Uint8Array(view.length);
  out.set(view);
  return out;
}

/** Reinterpret decoded bytes (little-endian, as every wasm build writes them) as typed samples. */
export function typedSamples(bytes: Uint8Array, bitsPerSample: number, signed: boolean): DecodedFrame['samples'] {
  if (bitsPerSample > 8) {
    const n = bytes.byteLength >> 1;
    return signed ? new Int16Array(bytes.buffer, bytes.byteOffset, n) : new Uint16Array(bytes.buffer, bytes.byteOffset, n);
  }
  return signed ? new Int8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes;
}

/** Cache one Emscripten module instance per codec per realm; a failed start is not cached (next call retries). */
export function moduleCache<M>(create: (loadWasm: WasmBinaryLoader) => Promise<M>): (loadWasm: WasmBinaryLoader) => Promise<M> {
  let pending: Promise<M> | undefined;
  return (loadWasm) => {
    if (!pending) {
      pending = create(loadWasm);
      pending.catch(() => {
        pending = undefined;
      });
    }
    return pending;
  };
}

/** The default export of a CommonJS factory module imported with import(): under Node it can sit one level down. */
export function factoryOf<F>(mod: unknown): F {
  const m = mod as { default?: unknown };
  const d = m.default as { default?: unknown } | undefined;
  if (typeof d === 'function') return d as F;
  if (d && typeof d.default === 'function') return d.default as F;
  return mod as F;
}

/** Emscripten print hooks that drop the codecs' informational logging (OpenJPEG prints every header it reads). */
export const quiet = { print: () => {}, printErr: () => {} };
