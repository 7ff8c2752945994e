/**
 * JPEG Baseline (1.2.840.10008.1.2.4.50) and 8-bit JPEG Extended (.51) through @cornerstonejs/codec-libjpeg-turbo-8bit
 * (libjpeg-turbo compiled to wasm; ISO/IEC 10918-1 DCT processes, 8-bit sample precision only). Colour streams come
 * back as RGB (libjpeg's YCbCr→RGB), so YBR_FULL_422 / YBR_FULL in the DICOM header describe the stream, not the
 * output (PS3.5 8.2.1). Lossy: the IDCT is not bit-exact across implementations; pydicom's libjpeg (pylibjpeg-libjpeg)
 * agrees to within a few grey levels.
 */
import { emscriptenMessage, runEmbindDecoder, type EmbindDecoder } from './embind';
import { factoryOf, moduleCache, quiet, type FrameCodec } from './types';

const PACKAGE = '@cornerstonejs/codec-libjpeg-turbo-8bit';

type Module = { JPEGDecoder: new () => EmbindDecoder };

const load = moduleCache<Module>(async (loadWasm) => {
  const factory = factoryOf<(o: object) => Promise<Module>>(await import('@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasmjs'));
  return factory({ wasmBinary: await loadWasm('libjpeg-turbo-8bit'), locateFile: (p: string) => p, ...quiet });
});

export const libjpegTurbo8bit: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, _info, loadWasm) {
    const mod = await load(loadWasm);
    return runEmbindDecoder(new mod.JPEGDecoder(), frame, PACKAGE, {
      signed: false,
      colorConvertedToRgb: true,
      describeError: (e) => emscriptenMessage(mod, e),
    });
  },
};
