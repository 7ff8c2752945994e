/**
 * High-Throughput JPEG 2000 (1.2.840.10008.1.2.4.201 lossless, .202 lossless RPCL, .203) through
 * @cornerstonejs/codec-openjph (OpenJPH, ISO/IEC 15444-15, as wasm). Lossless is bit-exact; the irreversible path is
 * floating point like Part 1's, so decoders may differ slightly.
 */
import { emscriptenMessage, type EmbindDecoder } from './embind';
import { copyOut, factoryOf, moduleCache, quiet, typedSamples, type FrameCodec } from './types';

const PACKAGE = '@cornerstonejs/codec-openjph';

interface HTJ2KDecoder extends EmbindDecoder {
  decodeSubResolution(level: number): void;
}
type Module = { HTJ2KDecoder: new () => HTJ2KDecoder };

const load = moduleCache<Module>(async (loadWasm) => {
  const factory = factoryOf<(o: object) => Promise<Module>>(await import('@cornerstonejs/codec-openjph/wasmjs'));
  return factory({ wasmBinary: await loadWasm('openjph'), locateFile: (p: string) => p, ...quiet });
});

export const openjph: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, info, loadWasm) {
    const mod = await load(loadWasm);
    const decoder = new mod.HTJ2KDecoder();
    try {
      decoder.getEncodedBuffer(frame.length).set(frame);
      decoder.decodeSubResolution(0); // full resolution
      const fi = decoder.getFrameInfo();
      const bytes = copyOut(decoder.getDecodedBuffer());
      return {
        width: fi.width,
        height: fi.height,
        samplesPerPixel: fi.componentCount,
        bitsPerSample: fi.bitsPerSample,
        samples: typedSamples(bytes, fi.bitsPerSample, fi.isSigned ?? info.pixelRepresentation === 1),
        // OpenJPH undoes the component transform when the stream uses one.
        colorConvertedToRgb: fi.componentCount === 3,
        codec: PACKAGE,
      };
    } catch (e) {
      throw new Error(emscriptenMessage(mod, e), { cause: e });
    } finally {
      decoder.delete?.();
    }
  },
};
