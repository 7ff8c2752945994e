/** Test-only minimal PNG writer (any bit depth / colour type), so decoders can be tested on exact inputs. */
import { zlibSync } from 'fflate';
import { pngChunk as chunk } from '../../../app/lib/imaging/png-encode';

/** rows: raw (unfiltered) scanline bytes per row. */
export function makePng(width: number, height: number, bitDepth: number, colorType: number, rows: Uint8Array[], palette?: number[][]): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([bitDepth, colorType, 0, 0, 0], 8);
  const raw: number[] = [];
  for (const r of rows) raw.push(0, ...r);
  const parts = [Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr)];
  if (palette) parts.push(chunk('PLTE', Uint8Array.from(palette.flat())));
  parts.push(chunk('IDAT', zlibSync(Uint8Array.from(raw))), chunk('IEND', new Uint8Array(0)));
  const total = parts.reduce((s, p) => s + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) { out.set(p, o); o += p.length; }
  return out;
}
