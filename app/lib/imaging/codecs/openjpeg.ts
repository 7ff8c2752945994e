/**
 * JPEG 2000 (1.2.840.10008.1.2.4.90 lossless, .91) through @cornerstonejs/codec-openjpeg (OpenJPEG, the ISO/IEC
 * 15444-1 reference implementation, as wasm). The reversible 5/3 path is bit-exact; the irreversible 9/7 path is
 * floating point, so decoders may differ by a grey level or so. A stream with the multiple-component transform comes
 * back as RGB (PS3.5 8.2.4: YBR_RCT / YBR_ICT then describe the stream).
 */
import { emscriptenMessage, runEmbindDecoder, type EmbindDecoder } from './embind';
import { factoryOf, moduleCache, quiet, type FrameCodec } from './types';

const PACKAGE = '@cornerstonejs/codec-openjpeg';

type Module = { J2KDecoder: new () => EmbindDecoder };

const load = moduleCache<Module>(async (loadWasm) => {
  const factory = factoryOf<(o: object) => Promise<Module>>(await import('@cornerstonejs/codec-openjpeg/decodewasmjs'));
  return factory({ wasmBinary: await loadWasm('openjpeg'), locateFile: (p: string) => p, ...quiet });
});

export const openjpeg: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, info, loadWasm) {
    const mod = await load(loadWasm);
    return runEmbindDecoder(new mod.J2KDecoder(), frame, PACKAGE, {
      signed: info.pixelRepresentation === 1,
      colorConvertedToRgb: true,
      describeError: (e) => emscriptenMessage(mod, e),
    });
  },
};
