/**
 * Minimal PNG encoder (PNG spec, ISO/IEC 15948: IHDR, one zlib IDAT, IEND; filter type 0 per row): 8-bit grayscale
 * (colour type 0) or RGBA (colour type 6), for masks, generated images and grids. Deflate by fflate; CRC-32 from
 * util/crc32 (the spec's Annex D, the same CRC as zip's).
 */
import { zlibSync } from 'fflate';
import { crc32 } from '../util/crc32';

/**
 * One PNG chunk (PNG spec §5.3): 4-byte big-endian data length, the 4-letter type, the data, and the CRC-32 of type +
 * data. The one chunk writer of the app, the fuzzer and the test helpers.
 */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  dv.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/**
 * Encode w×h pixels: `channels` 1 (gray) or 4 (RGBA), 8 bits each, row-major. Returns the PNG file bytes.
 * Throws RangeError when the buffer does not hold w·h·channels bytes.
 */
export function encodePng(pixels: Uint8Array | Uint8ClampedArray, w: number, h: number, channels: 1 | 4 = 1): Uint8Array {
  if (pixels.length !== w * h * channels) throw new RangeError(`encodePng: ${pixels.length} bytes for ${w}x${h}x${channels}`);
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, w);
  dv.setUint32(4, h);
  ihdr[8] = 8;
  ihdr[9] = channels === 1 ? 0 : 6;
  const stride = w * channels;
  const raw = new Uint8Array((stride + 1) * h);
  for (let y = 0; y < h; y++) raw.set(pixels.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const parts = [
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlibSync(raw, { level: 6 })),
    pngChunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
