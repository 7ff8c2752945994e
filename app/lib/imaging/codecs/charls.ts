/**
 * JPEG-LS Lossless (1.2.840.10008.1.2.4.80) and Near-Lossless (.81) through @cornerstonejs/codec-charls (CharLS, the
 * ISO/IEC 14495-1 reference-grade codec, as wasm). Lossless is bit-exact; near-lossless stays within the stream's
 * NEAR parameter of the original (the bound of 14495-1 A.4), and is identical to pydicom's pyjpegls (also CharLS).
 */
import { emscriptenMessage, runEmbindDecoder, type EmbindDecoder } from './embind';
import { factoryOf, moduleCache, quiet, type DecodedFrame, type FrameCodec } from './types';

const PACKAGE = '@cornerstonejs/codec-charls';

interface JpegLSDecoder extends EmbindDecoder {
  /** 0 none (one scan per component: the output is colour-by-plane), 1 line, 2 sample (ISO/IEC 14495-1 ILV). */
  getInterleaveMode(): number;
}
type Module = { JpegLSDecoder: new () => JpegLSDecoder };

/** Colour-by-plane samples → colour-by-pixel (what the pipeline takes from every codec). */
function interleave(f: DecodedFrame): DecodedFrame {
  const n = f.width * f.height;
  const c = f.samplesPerPixel;
  const src = f.samples;
  const out = new (src.constructor as new (len: number) => DecodedFrame['samples'])(src.length);
  for (let k = 0; k < c; k++) for (let i = 0; i < n; i++) out[i * c + k] = src[k * n + i];
  return { ...f, samples: out };
}

const load = moduleCache<Module>(async (loadWasm) => {
  const factory = factoryOf<(o: object) => Promise<Module>>(await import('@cornerstonejs/codec-charls/decodewasmjs'));
  return factory({ wasmBinary: await loadWasm('charls'), locateFile: (p: string) => p, ...quiet });
});

export const charls: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, info, loadWasm) {
    const mod = await load(loadWasm);
    const decoder = new mod.JpegLSDecoder();
    let mode = 2;
    // JPEG-LS carries no sign: Pixel Representation says how to read the samples (PS3.5 8.2.3).
    const f = runEmbindDecoder(decoder, frame, PACKAGE, {
      signed: info.pixelRepresentation === 1,
      colorConvertedToRgb: false,
      describeError: (e) => emscriptenMessage(mod, e),
      beforeDelete: () => {
        mode = decoder.getInterleaveMode();
      },
    });
    // CharLS writes an ILV_NONE colour stream plane by plane (DICOM Planar Configuration 1 is encoded this way).
    return f.samplesPerPixel > 1 && mode === 0 ? interleave(f) : f;
  },
};
