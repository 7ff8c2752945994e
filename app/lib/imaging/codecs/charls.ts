/**
 * JPEG-LS Lossless (1.2.840.10008.1.2.4.80) and Near-Lossless (.81) through @cornerstonejs/codec-charls (CharLS, the
 * ISO/IEC 14495-1 reference-grade codec, as wasm). Lossless is bit-exact; near-lossless stays within the stream's
 * NEAR parameter of the original (the bound of 14495-1 A.4), and is identical to pydicom's pyjpegls (also CharLS).
 */
import { emscriptenMessage, runEmbindDecoder, type EmbindDecoder } from './embind';
import { factoryOf, moduleCache, quiet, type FrameCodec } from './types';

const PACKAGE = '@cornerstonejs/codec-charls';

type Module = { JpegLSDecoder: new () => EmbindDecoder };

const load = moduleCache<Module>(async (loadWasm) => {
  const factory = factoryOf<(o: object) => Promise<Module>>(await import('@cornerstonejs/codec-charls/decodewasmjs'));
  return factory({ wasmBinary: await loadWasm('charls'), locateFile: (p: string) => p, ...quiet });
});

export const charls: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, info, loadWasm) {
    const mod = await load(loadWasm);
    // JPEG-LS carries no sign: Pixel Representation says how to read the samples (PS3.5 8.2.3).
    return runEmbindDecoder(new mod.JpegLSDecoder(), frame, PACKAGE, {
      signed: info.pixelRepresentation === 1,
      colorConvertedToRgb: false,
      describeError: (e) => emscriptenMessage(mod, e),
    });
  },
};
