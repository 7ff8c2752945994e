/** Minimal NumPy .npy (format 1.0/2.0, little-endian, C order) reader for test references written by NumPy. */
import fs from 'node:fs';

export interface Npy {
  shape: number[];
  dtype: string;
  data: Float64Array | Float32Array | Uint16Array | Int16Array | Uint8Array | Int8Array | Int32Array | Uint32Array;
}

const CTORS: Record<string, new (b: ArrayBuffer, o: number, n: number) => Npy['data']> = {
  '<f8': Float64Array, '<f4': Float32Array, '<u2': Uint16Array, '<i2': Int16Array, '|u1': Uint8Array, '|i1': Int8Array,
  '<i4': Int32Array, '<u4': Uint32Array,
};

export function readNpy(path: string): Npy {
  const b = fs.readFileSync(path);
  if (b.toString('latin1', 1, 6) !== 'NUMPY') throw new Error(`${path} is not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = b.toString('latin1', start, start + hlen);
  const dtype = /'descr':\s*'([^']+)'/.exec(header)![1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error('fortran order not supported');
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)![1].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const Ctor = CTORS[dtype];
  if (!Ctor) throw new Error(`dtype ${dtype} not supported`);
  const off = start + hlen;
  const bytes = b.subarray(off);
  const own = new Uint8Array(bytes).buffer; // aligned copy
  const size = (Ctor as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT;
  return { shape, dtype, data: new Ctor(own, 0, bytes.length / size) };
}
