/**
 * Test-only DICOM writer: builds small synthetic PS3.10 files in the transfer syntaxes the decoder must handle.
 * Not a general-purpose writer; enough for Explicit/Implicit VR LE, Explicit VR BE, deflated, and encapsulated data.
 */
import { deflateSync } from 'fflate';

export interface El {
  /** 0xGGGGEEEE */
  tag: number;
  vr: string;
  /** string (text VRs), number[] (US/SS/UL/FL...), Uint8Array (raw bytes, already in the target byte order for OW) */
  value: string | number[] | Uint8Array;
}

export interface WriteOptions {
  transferSyntax: string;
  /** Write the 128-byte preamble + 'DICM' (default true). */
  preamble?: boolean;
  /** Write the group 0002 meta header (default true). */
  meta?: boolean;
  elements: El[];
  /** Native pixel data (little-endian sample bytes are converted for big endian when bitsAllocated is 16). */
  pixels?: { data: Uint8Array | Uint16Array | Int16Array; bitsAllocated: 8 | 16 };
  /** Encapsulated pixel data fragments (JPEG 2000, RLE, ...). */
  fragments?: Uint8Array[];
}

const LONG_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'SQ', 'UT', 'UN', 'UC', 'UR']);

class Buf {
  parts: number[] = [];
  constructor(public le: boolean) {}
  u8(...b: number[]) { this.parts.push(...b); }
  u16(v: number) { this.le ? this.u8(v & 255, (v >> 8) & 255) : this.u8((v >> 8) & 255, v & 255); }
  u32(v: number) {
    const b = [v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255];
    this.u8(...(this.le ? b : b.reverse()));
  }
  bytes(b: Uint8Array) { for (const x of b) this.parts.push(x); }
  out() { return Uint8Array.from(this.parts); }
}

function encodeValue(el: El, le: boolean): Uint8Array {
  const { vr, value } = el;
  if (value instanceof Uint8Array) {
    const v = value.length % 2 ? Uint8Array.from([...value, 0]) : value;
    return v;
  }
  if (typeof value === 'string') {
    let s = value;
    if (s.length % 2) s += vr === 'UI' ? '\0' : ' ';
    return Uint8Array.from([...s].map((c) => c.charCodeAt(0)));
  }
  const b = new Buf(le);
  for (const n of value) {
    if (vr === 'US' || vr === 'SS') b.u16(n & 0xffff);
    else if (vr === 'UL' || vr === 'SL') b.u32(n >>> 0);
    else throw new Error(`dicom-writer: numeric VR ${vr} not supported`);
  }
  return b.out();
}

function writeElement(b: Buf, el: El, explicit: boolean) {
  const group = el.tag >>> 16;
  const elem = el.tag & 0xffff;
  const v = encodeValue(el, b.le);
  b.u16(group);
  b.u16(elem);
  if (explicit) {
    b.u8(el.vr.charCodeAt(0), el.vr.charCodeAt(1));
    if (LONG_VRS.has(el.vr)) {
      b.u16(0);
      b.u32(v.length);
    } else b.u16(v.length);
  } else b.u32(v.length);
  b.bytes(v);
}

export function writeDicom(opts: WriteOptions): Uint8Array {
  const ts = opts.transferSyntax;
  const explicit = ts !== '1.2.840.10008.1.2';
  const le = ts !== '1.2.840.10008.1.2.2';
  const deflated = ts === '1.2.840.10008.1.2.1.99';

  // data set
  const ds = new Buf(le);
  const els = [...opts.elements].sort((a, b) => a.tag - b.tag);
  for (const el of els) writeElement(ds, el, explicit);
  if (opts.pixels) {
    let raw: Uint8Array;
    if (opts.pixels.bitsAllocated === 16) {
      const src = opts.pixels.data as Uint16Array | Int16Array;
      const p = new Buf(le);
      for (const x of src) p.u16(x & 0xffff);
      raw = p.out();
    } else raw = opts.pixels.data as Uint8Array;
    writeElement(ds, { tag: 0x7fe00010, vr: opts.pixels.bitsAllocated === 16 ? 'OW' : 'OB', value: raw }, explicit);
  }
  if (opts.fragments) {
    ds.u16(0x7fe0); ds.u16(0x0010);
    if (explicit) { ds.u8(0x4f, 0x42); ds.u16(0); }
    ds.u32(0xffffffff);
    // empty basic offset table
    ds.u16(0xfffe); ds.u16(0xe000); ds.u32(0);
    for (const f of opts.fragments) {
      const frag = f.length % 2 ? Uint8Array.from([...f, 0]) : f;
      ds.u16(0xfffe); ds.u16(0xe000); ds.u32(frag.length); ds.bytes(frag);
    }
    ds.u16(0xfffe); ds.u16(0xe0dd); ds.u32(0);
  }
  let body = ds.out();
  if (deflated) body = deflateSync(body);

  const out = new Buf(true);
  if (opts.preamble ?? true) {
    for (let i = 0; i < 128; i++) out.u8(0);
    out.u8(0x44, 0x49, 0x43, 0x4d);
  }
  if (opts.meta ?? true) {
    const m = new Buf(true);
    writeElement(m, { tag: 0x00020001, vr: 'OB', value: Uint8Array.from([0, 1]) }, true);
    writeElement(m, { tag: 0x00020002, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.1' }, true);
    writeElement(m, { tag: 0x00020003, vr: 'UI', value: '1.2.3.4.5.6.7' }, true);
    writeElement(m, { tag: 0x00020010, vr: 'UI', value: ts }, true);
    const mb = m.out();
    writeElement(out, { tag: 0x00020000, vr: 'UL', value: [mb.length] }, true);
    out.bytes(mb);
  }
  out.bytes(body);
  return out.out();
}

/** Common image attributes for a grayscale image. */
export function grayAttrs(o: {
  rows: number; cols: number; bitsAllocated: 8 | 16; bitsStored?: number; highBit?: number; signed?: boolean;
  photometric?: string; slope?: number; intercept?: number; wc?: string; ww?: string; extra?: El[];
}): El[] {
  const bs = o.bitsStored ?? o.bitsAllocated;
  const els: El[] = [
    { tag: 0x00080016, vr: 'UI', value: '1.2.840.10008.5.1.4.1.1.1.1' },
    { tag: 0x00080060, vr: 'CS', value: 'DX' },
    { tag: 0x00100010, vr: 'PN', value: 'Doe^Jane' },
    { tag: 0x00100020, vr: 'LO', value: 'PID-123' },
    { tag: 0x00280002, vr: 'US', value: [1] },
    { tag: 0x00280004, vr: 'CS', value: o.photometric ?? 'MONOCHROME2' },
    { tag: 0x00280010, vr: 'US', value: [o.rows] },
    { tag: 0x00280011, vr: 'US', value: [o.cols] },
    { tag: 0x00280100, vr: 'US', value: [o.bitsAllocated] },
    { tag: 0x00280101, vr: 'US', value: [bs] },
    { tag: 0x00280102, vr: 'US', value: [o.highBit ?? bs - 1] },
    { tag: 0x00280103, vr: 'US', value: [o.signed ? 1 : 0] },
  ];
  if (o.slope !== undefined) els.push({ tag: 0x00281053, vr: 'DS', value: String(o.slope) });
  if (o.intercept !== undefined) els.push({ tag: 0x00281052, vr: 'DS', value: String(o.intercept) });
  if (o.wc !== undefined) els.push({ tag: 0x00281050, vr: 'DS', value: o.wc });
  if (o.ww !== undefined) els.push({ tag: 0x00281051, vr: 'DS', value: o.ww });
  return [...els, ...(o.extra ?? [])];
}
