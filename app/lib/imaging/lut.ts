/**
 * The LUT-bearing attributes of PS3.3: Modality LUT Sequence (C.11.1), VOI LUT Sequence (C.11.2), Palette Color
 * Lookup Tables incl. the segmented form (C.7.6.3.1.5-6, C.7.9). Pure functions on already-parsed values.
 */
import { ImageDecodeError } from './errors';

/** A LUT as PS3.3 C.11.1.1.1 describes it: entries, the first input value mapped, and the bits of each entry. */
export interface Lut {
  /** Number of entries (descriptor value 0 means 65536). */
  entries: number;
  /** The stored (or modality) value mapped to entry 0; inputs below map to entry 0, above to the last entry. */
  firstMapped: number;
  /** Bits per entry (8 to 16). */
  bits: number;
  data: Uint16Array;
  /** LUT Explanation (0028,3003), when given. */
  explanation?: string;
}

/**
 * Read a LUT Descriptor (3 values) and LUT Data. `descriptor[1]` is reinterpreted as signed when the data it maps
 * is signed (the descriptor's VR is US or SS, and writers get it wrong; pydicom does the same). 8-bit LUT data
 * packed two entries per 16-bit word (older files) is unpacked when the data has entries/2 words.
 */
export function makeLut(descriptor: [number, number, number], data: Uint16Array, signedInput: boolean, explanation?: string): Lut {
  const entries = descriptor[0] === 0 ? 65536 : descriptor[0];
  let first = descriptor[1];
  if (signedInput && first > 32767) first -= 65536;
  let bits = descriptor[2];
  if (bits < 1 || bits > 16) throw new ImageDecodeError('corrupt', `A LUT Descriptor declares ${bits} bits per entry (8 to 16 allowed, PS3.3 C.11.1.1.1)`);
  let values = data;
  if (bits <= 8 && data.length * 2 === entries) {
    values = new Uint16Array(entries);
    for (let i = 0; i < data.length; i++) {
      values[2 * i] = data[i] & 0xff;
      values[2 * i + 1] = data[i] >> 8;
    }
  }
  if (values.length < entries) {
    throw new ImageDecodeError('corrupt', `A LUT declares ${entries} entries but its LUT Data holds ${values.length}`);
  }
  // Some writers declare 16 bits but store 8-bit values, or the reverse; bits says how to normalise, so keep it.
  if (bits === 8) {
    let max = 0;
    for (let i = 0; i < entries; i++) max = Math.max(max, values[i]);
    if (max > 255) bits = 16;
  }
  return { entries, firstMapped: first, bits, data: values.subarray(0, entries), explanation };
}

/** Look one value up: clamp to the table's first/last entry (PS3.3 C.11.1.1.1). */
export function lookup(lut: Lut, x: number): number {
  let i = Math.round(x) - lut.firstMapped;
  if (i < 0) i = 0;
  else if (i >= lut.entries) i = lut.entries - 1;
  return lut.data[i];
}

export function applyLut(lut: Lut, values: ArrayLike<number>): Float32Array {
  const out = new Float32Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = lookup(lut, values[i]);
  return out;
}

/** PS3.3 C.7.6.3.1.5: a palette (like any LUT whose descriptor has a 16-bit count) has at most 65,536 entries. */
export const MAX_LUT_ENTRIES = 65536;

/**
 * Expand Segmented Palette Color LUT Data (PS3.3 C.7.9.2): opcode 0 discrete (n values follow), 1 linear (from the
 * previous value to the next word over n steps), 2 indirect (copy n segments starting at a 32-bit word offset,
 * low word first). Reference: pydicom.pixels.processing._expand_segmented_lut.
 *
 * Bounded before memory is spent: the output is a preallocated table of `maxEntries` (the descriptor's count, at
 * most 65,536), and expansion stops, refusing the table, once a segment would write past it; the segments walked
 * (indirect ones replay others) are capped too, so a table of empty segments cannot spin. pydicom expands without
 * a cap; an 815 KB file whose segments expand to 2.9 billion entries is refused here in milliseconds.
 * Throws ImageDecodeError 'corrupt' naming `name` (e.g. "Red Palette Color Lookup Table Data (0028,1221)").
 */
export function expandSegmentedLut(data: Uint16Array, bits: number, maxEntries = MAX_LUT_ENTRIES, name = 'Segmented Palette Color Lookup Table Data'): Uint16Array {
  const cap = Math.min(maxEntries, MAX_LUT_ENTRIES);
  const out = new Uint16Array(cap);
  let n0 = 0; // entries written
  let walked = 0;
  const maxWalked = 4 * data.length + 16 * cap;
  const mask = bits === 8 ? 0xff : 0xffff;
  const tooMany = (more: number) =>
    new ImageDecodeError('corrupt', `The ${name} expands past ${cap} entries (its descriptor's count${cap === MAX_LUT_ENTRIES ? ', and the 65,536 a palette can have' : ''}; a segment adds ${more} more at entry ${n0}): the table is refused (PS3.3 C.7.9.2)`, { maxEntries: cap, at: n0 });
  const room = (n: number) => {
    if (n0 + n > cap) throw tooMany(n);
  };
  const run = (start: number, end: number, depth: number): void => {
    if (depth > 8) throw new ImageDecodeError('corrupt', `${name}: indirect segments nest too deep`);
    let i = start;
    while (i < end) {
      if (++walked > maxWalked) throw new ImageDecodeError('corrupt', `${name}: more than ${maxWalked} segments walked (indirect segments replaying each other); the table is refused (PS3.3 C.7.9.2)`);
      if (i + 1 >= data.length) throw new ImageDecodeError('corrupt', `${name}: a segment header runs past the end of the table`);
      const op = data[i];
      const n = data[i + 1];
      if (op === 0) {
        const have = Math.min(n, data.length - i - 2); // a short last segment gives what it has, as pydicom's slice
        room(have);
        for (let k = 0; k < have; k++) out[n0++] = data[i + 2 + k] & mask;
        i += 2 + n;
      } else if (op === 1) {
        if (n0 === 0) throw new ImageDecodeError('corrupt', 'Segmented palette LUT starts with a linear segment');
        if (i + 2 >= data.length) throw new ImageDecodeError('corrupt', `${name}: a linear segment runs past the end of the table`);
        room(n);
        const y0 = out[n0 - 1];
        const y1 = data[i + 2];
        // n values, ending at y1 (the previous segment's last value is the start point, not repeated)
        if (y0 === y1) for (let k = 0; k < n; k++) out[n0++] = y1;
        else for (let k = 1; k <= n; k++) out[n0++] = roundHalfEven(y0 + ((y1 - y0) * k) / n); // numpy.around, as pydicom
        i += 3;
      } else if (op === 2) {
        const offset = data[i + 2] | (data[i + 3] << 16);
        // offset counts words from the start of the segmented data; copy n segments from there
        let j = offset;
        for (let k = 0; k < n; k++) {
          if (j >= data.length) throw new ImageDecodeError('corrupt', `${name}: an indirect segment points past the end of the table`);
          const segLen = data[j] === 0 ? 2 + data[j + 1] : data[j] === 1 ? 3 : 4;
          run(j, j + segLen, depth + 1);
          j += segLen;
        }
        i += 4;
      } else {
        throw new ImageDecodeError('corrupt', `Segmented palette LUT has unknown segment opcode ${op} (PS3.3 C.7.9.2)`);
      }
    }
  };
  run(0, data.length, 0);
  return out.slice(0, n0);
}

/** Round half to even, as numpy.around (used by pydicom for segmented LUTs). */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (Math.abs(d - 0.5) < 1e-9) return f % 2 === 0 ? f : f + 1;
  return Math.round(x);
}
