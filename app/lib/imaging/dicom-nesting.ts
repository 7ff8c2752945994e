/**
 * dicom-parser reads a sequence (SQ, or an undefined-length UN / implicit-VR element holding items) by calling
 * itself for each item's data set: a file of nested empty sequences, 20 bytes a level, exhausts the call stack in
 * a few tens of KB. This walks the data set first, WITHOUT recursion (an explicit stack), the way dicom-parser will
 * read it (PS3.5 7.5: items FFFE,E000, delimiters FFFE,E00D / FFFE,E0DD), and refuses a file nested deeper than
 * MAX_SEQUENCE_DEPTH before it is handed over.
 */
import { ImageDecodeError } from './errors';

/** Deepest sequence nesting accepted. Real objects nest a few levels (SR content trees, RT structure sets: < 20). */
export const MAX_SEQUENCE_DEPTH = 64;

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;

interface Frame {
  /** End of a defined-length sequence or item; undefined: ends at its delimiter. */
  end?: number;
  kind: 'seq' | 'item';
  /** How the data sets inside are encoded (an undefined-length UN holds implicit VR items, PS3.5 6.2.2). */
  explicit: boolean;
  tag: number;
}

function tagText(tag: number): string {
  const h = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `(${h.slice(0, 4)},${h.slice(4)})`;
}

/**
 * The deepest sequence nesting found walking from `start` (a data set, not the meta header), stopping early at
 * `limit + 1`. Returns the depth and the tag of the innermost sequence at that depth. Bytes the walk cannot follow
 * end it (dicom-parser will report them); encapsulated Pixel Data items are skipped, not entered.
 */
export function sequenceDepth(b: Uint8Array, start: number, little: boolean, explicit: boolean, limit = MAX_SEQUENCE_DEPTH): { depth: number; tag?: number } {
  const u16 = (i: number) => (little ? b[i] | (b[i + 1] << 8) : (b[i] << 8) | b[i + 1]);
  const u32 = (i: number) => (little ? (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16)) + b[i + 3] * 2 ** 24 : b[i] * 2 ** 24 + ((b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]));
  const stack: Frame[] = [];
  let seqs = 0;
  let deepest = { depth: 0, tag: undefined as number | undefined };
  const pop = () => {
    const f = stack.pop()!;
    if (f.kind === 'seq') seqs--;
  };
  let i = start;
  let steps = 0;
  while (i + 8 <= b.length && steps++ < 50_000_000) {
    const top = stack[stack.length - 1];
    if (top?.end !== undefined && i >= top.end) {
      pop();
      continue;
    }
    const group = u16(i);
    const elem = u16(i + 2);
    if (group === 0xfffe) {
      const len = u32(i + 4);
      if (elem === 0xe000 && top?.kind === 'seq') {
        stack.push({ kind: 'item', end: len === UNDEFINED ? undefined : i + 8 + len, explicit: top.explicit, tag: top.tag });
      } else if (elem === 0xe00d) {
        while (stack.length && stack[stack.length - 1].kind !== 'item') pop();
        if (stack.length) pop();
      } else if (elem === 0xe0dd) {
        while (stack.length && stack[stack.length - 1].kind !== 'seq') pop();
        if (stack.length) pop();
      } else return deepest; // not where an item can be: dicom-parser will say what is wrong
      i += 8;
      continue;
    }
    const inExplicit = top ? top.explicit : explicit;
    const tag = ((group << 16) | elem) >>> 0;
    let len: number, head: number, isSeq: boolean, innerExplicit = inExplicit;
    if (inExplicit) {
      const vr = String.fromCharCode(b[i + 4], b[i + 5]);
      if (!/^[A-Z]{2}$/.test(vr)) return deepest;
      const long = LONG_VRS.has(vr);
      if (long && i + 12 > b.length) return deepest;
      len = long ? u32(i + 8) : u16(i + 6);
      head = long ? 12 : 8;
      isSeq = vr === 'SQ' || (vr === 'UN' && len === UNDEFINED && tag !== 0x7fe00010);
      if (vr === 'UN') innerExplicit = false;
    } else {
      len = u32(i + 4);
      head = 8;
      // dicom-parser: undefined length, or a value that starts with an item / sequence delimiter tag
      isSeq = len === UNDEFINED || (i + 12 <= b.length && u16(i + 8) === 0xfffe && (u16(i + 10) === 0xe000 || u16(i + 10) === 0xe0dd));
    }
    if (tag === 0x7fe00010 && len === UNDEFINED) {
      // encapsulated Pixel Data: items of bytes up to the sequence delimiter, nothing nested
      i += head;
      while (i + 8 <= b.length && u16(i) === 0xfffe && u16(i + 2) === 0xe000) i += 8 + u32(i + 4);
      if (i + 8 <= b.length && u16(i) === 0xfffe && u16(i + 2) === 0xe0dd) i += 8;
      continue;
    }
    if (isSeq) {
      stack.push({ kind: 'seq', end: len === UNDEFINED ? undefined : i + head + len, explicit: innerExplicit, tag });
      seqs++;
      if (seqs > deepest.depth) deepest = { depth: seqs, tag };
      if (seqs > limit) return deepest;
      i += head;
      continue;
    }
    if (len === UNDEFINED) return deepest; // an undefined-length value dicom-parser scans for its delimiter
    i += head + len;
  }
  return deepest;
}

/** Throws ImageDecodeError 'unsupported-dicom' naming the limit and the sequence when nesting passes it. */
export function checkSequenceDepth(b: Uint8Array, start: number, little: boolean, explicit: boolean, limit = MAX_SEQUENCE_DEPTH): void {
  const d = sequenceDepth(b, start, little, explicit, limit);
  if (d.depth > limit) {
    throw new ImageDecodeError(
      'unsupported-dicom',
      `The DICOM data set nests sequences more than ${limit} levels deep (at ${tagText(d.tag!)}); refused before parsing (real images nest a few levels; this is damaged or built to exhaust the parser's stack)`,
      { maxSequenceDepth: limit, tag: tagText(d.tag!) },
    );
  }
}
