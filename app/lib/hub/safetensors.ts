/**
 * Reading single scalars out of a model.safetensors without downloading it: the format (huggingface/safetensors,
 * README "Format") is an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header
 * `{NAME: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}`, then the tensor bytes, offsets
 * relative to the end of the header (byte 8 + N), little-endian. The caller reads those byte ranges (HTTP Range on the
 * Hub, Blob.slice for a local folder): 8 bytes, the header, and a few bytes per tensor.
 */

/** The safetensors spec caps the header at 100 MB; a CLIP's is a few tens of KB. Larger is refused before reading. */
export const MAX_SAFETENSORS_HEADER_BYTES = 16 * 1024 * 1024;

export interface SafetensorsTensorInfo {
  dtype: string;
  shape: number[];
  /** [begin, end) relative to the first byte after the header. */
  data_offsets: [number, number];
}

export type SafetensorsHeader = Record<string, SafetensorsTensorInfo>;

export class SafetensorsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SafetensorsError';
  }
}

/** N, the header's byte length, from the file's first 8 bytes. Throws SafetensorsError past MAX_SAFETENSORS_HEADER_BYTES. */
export function safetensorsHeaderLength(first8: Uint8Array, what: string): number {
  if (first8.byteLength < 8) throw new SafetensorsError(`${what}: fewer than 8 bytes (not a safetensors file)`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_SAFETENSORS_HEADER_BYTES)) throw new SafetensorsError(`${what}: header length ${n} is not between 2 and ${MAX_SAFETENSORS_HEADER_BYTES} bytes (not a safetensors file?)`);
  return Number(n);
}

/** The JSON header (without `__metadata__`). Throws SafetensorsError on text that is not one. */
export function parseSafetensorsHeader(bytes: Uint8Array, what: string): SafetensorsHeader {
  let doc: unknown;
  try {
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new SafetensorsError(`${what}: the header is not JSON (${(e as Error).message})`);
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new SafetensorsError(`${what}: the header is not a JSON object`);
  const out: SafetensorsHeader = {};
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (k === '__metadata__') continue;
    const t = v as Partial<SafetensorsTensorInfo>;
    if (!t || typeof t.dtype !== 'string' || !Array.isArray(t.shape) || !Array.isArray(t.data_offsets) || t.data_offsets.length !== 2) {
      throw new SafetensorsError(`${what}: tensor ${k} has no dtype / shape / data_offsets`);
    }
    out[k] = t as SafetensorsTensorInfo;
  }
  return out;
}

/** The tensor named `name`, or one whose name ends in `.name` (a prefixed state dict, e.g. `model.logit_scale`). */
export function findTensor(header: SafetensorsHeader, name: string): { name: string; info: SafetensorsTensorInfo } | undefined {
  if (header[name]) return { name, info: header[name] };
  const k = Object.keys(header).find((n) => n.endsWith(`.${name}`));
  return k ? { name: k, info: header[k] } : undefined;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };

/** Absolute [start, endInclusive] bytes of a one-element float tensor (an HTTP Range). Throws SafetensorsError otherwise. */
export function scalarByteRange(headerLength: number, t: { name: string; info: SafetensorsTensorInfo }, what: string): [number, number] {
  const size = DTYPE_BYTES[t.info.dtype];
  if (!size) throw new SafetensorsError(`${what}: ${t.name} has dtype ${t.info.dtype}; a scalar is read from F32, F16, BF16 or F64`);
  const n = t.info.shape.reduce((a, b) => a * b, 1);
  const [b, e] = t.info.data_offsets;
  if (n !== 1 || e - b !== size) throw new SafetensorsError(`${what}: ${t.name} has shape [${t.info.shape.join(', ')}] (${e - b} bytes), not one ${t.info.dtype} value`);
  return [8 + headerLength + b, 8 + headerLength + e - 1];
}

/** IEEE half (binary16) bits to a number. */
function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** The value of one little-endian scalar of `dtype` (F32, F16, BF16 = the top 16 bits of an F32, F64). */
export function decodeScalar(dtype: string, bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'F32') return dv.getFloat32(0, true);
  if (dtype === 'F64') return dv.getFloat64(0, true);
  if (dtype === 'F16') return halfToNumber(dv.getUint16(0, true));
  if (dtype === 'BF16') {
    const b = new DataView(new ArrayBuffer(4));
    b.setUint32(0, dv.getUint16(0, true) << 16, false);
    return b.getFloat32(0, false);
  }
  throw new SafetensorsError(`dtype ${dtype} is not a float the app reads`);
}
