/**
 * 12-bit JPEG Extended (1.2.840.10008.1.2.4.51, ISO/IEC 10918-1 Process 4, SOF1 with P = 12) through dcmjs-codecs'
 * native codecs (DCMTK's IJG-derived 12-bit libjpeg build compiled to wasm). Cornerstone's libjpeg-turbo build is
 * 8-bit only and its pure-JS 12-bit fallback is biased by +15 grey levels (level shift 2063.5 instead of 2048), so
 * this package is used for 12-bit streams only. Lossy: within 1 grey level of pydicom's pylibjpeg-libjpeg.
 *
 * dcmjs-codecs fetches/reads its wasm itself; its one (static) byte source is replaced so the binary comes from the
 * injected WasmBinaryLoader like every other codec here.
 */
import { moduleCache, typedSamples, type FrameCodec } from './types';

const PACKAGE = 'dcmjs-codecs';

interface DcmjsContext {
  getDecodedBuffer(): Uint8Array | undefined;
  getWidth(): number | undefined;
  getHeight(): number | undefined;
  getBitsStored(): number | undefined;
  getSamplesPerPixel(): number | undefined;
}
interface DcmjsCodecsApi {
  NativeCodecs: {
    initializeAsync(opts?: object): Promise<void>;
    decodeJpeg(ctx: DcmjsContext, params?: { convertColorspaceToRgb?: boolean }): DcmjsContext;
    _getWebAssemblyBytes?: () => Promise<ArrayBuffer>;
  };
  Context: new (attrs: object) => DcmjsContext;
}

const load = moduleCache<DcmjsCodecsApi>(async (loadWasm) => {
  const mod = await import('dcmjs-codecs');
  const api = ((mod as { default?: unknown }).default && (mod as { default: { NativeCodecs?: unknown } }).default.NativeCodecs
    ? (mod as { default: unknown }).default
    : mod) as DcmjsCodecsApi;
  const bin = await loadWasm('dcmjs-native-codecs');
  const u8 = bin instanceof Uint8Array ? bin : new Uint8Array(bin);
  const ab = u8.buffer.slice(u8.byteOffset, u8.byteOffset + u8.byteLength) as ArrayBuffer;
  api.NativeCodecs._getWebAssemblyBytes = async () => ab;
  await api.NativeCodecs.initializeAsync({});
  return api;
});

export const dcmjsJpeg12: FrameCodec = {
  packageName: PACKAGE,
  async decode(frame, info, loadWasm) {
    const api = await load(loadWasm);
    const ctx = new api.Context({
      width: info.columns,
      height: info.rows,
      bitsAllocated: info.bitsAllocated,
      bitsStored: info.bitsStored,
      samplesPerPixel: info.samplesPerPixel,
      pixelRepresentation: info.pixelRepresentation,
      planarConfiguration: 0,
      photometricInterpretation: info.samplesPerPixel === 3 ? 'YBR_FULL_422' : 'MONOCHROME2',
      encodedBuffer: frame,
    });
    const out = api.NativeCodecs.decodeJpeg(ctx, { convertColorspaceToRgb: true });
    const buf = out.getDecodedBuffer();
    if (!buf) throw new Error('dcmjs-codecs returned no pixels');
    const bytes = new Uint8Array(buf);
    const bits = info.bitsAllocated > 8 ? 16 : 8;
    return {
      width: out.getWidth() ?? info.columns,
      height: out.getHeight() ?? info.rows,
      samplesPerPixel: out.getSamplesPerPixel() ?? info.samplesPerPixel,
      bitsPerSample: info.bitsStored,
      samples: typedSamples(bytes, bits, info.pixelRepresentation === 1),
      colorConvertedToRgb: info.samplesPerPixel === 3,
      codec: PACKAGE,
    };
  },
};
