/**
 * PNG chunks checked BEFORE any decoder gets the bytes (pngjs in Node, fast-png for 16-bit, the browser's): a PNG
 * decoder inflates what the file holds, and a few KB of deflate can hold gigabytes. Walked here (PNG spec, 3rd ed.,
 * 5.3 chunk layout): every chunk must fit in the file; the compressed ancillary chunks (zTXt 11.3.3.3, iTXt
 * 11.3.3.4 when its flag says compressed, iCCP 11.3.2.5) are inflated with a cap and their output discarded; and the
 * image data (all IDAT, one zlib stream) is inflated, counting, against the size IHDR implies (scanlines plus
 * filter bytes, per Adam7 pass when interlaced), with libpng's tolerance of a little extra. Memory: one 32 KB
 * window; no output is kept. Refusals name the chunk and the limit.
 */
import { Inflate } from 'fflate';
import { ImageDecodeError } from './errors';

/** Largest inflated zTXt/iTXt/iCCP accepted (ICC profiles are < 1 MB; text this long is not metadata). */
export const MAX_PNG_ANCILLARY_INFLATED = 8 * 1024 * 1024;
/** Inflated image data beyond what IHDR implies that is tolerated (libpng warns "Extra compressed data"). */
const IDAT_SLACK = 64 * 1024;

const u32be = (b: Uint8Array, i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;

function mb(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MB` : `${n} bytes`;
}

/** Bytes of raw (filtered) image data IHDR implies: per pass, rows × (1 filter byte + packed row). */
export function pngRawDataSize(width: number, height: number, bitDepth: number, colorType: number, interlace: number): number {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colorType] ?? 4;
  const rowBytes = (w: number) => (w === 0 ? 0 : 1 + Math.ceil((w * channels * bitDepth) / 8));
  if (interlace !== 1) return height * rowBytes(width);
  // Adam7 (PNG spec 8.2): pass origins and steps
  const passes = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  let total = 0;
  for (const [x0, y0, dx, dy] of passes) {
    const w = Math.ceil((width - x0) / dx);
    const h = Math.ceil((height - y0) / dy);
    if (w > 0 && h > 0) total += h * rowBytes(w);
  }
  return total;
}

/** Inflate (zlib) `data`, counting; throws `over()` once past `cap`, ImageDecodeError 'corrupt' if damaged. */
function inflateCounting(parts: Uint8Array[], cap: number, over: (n: number) => ImageDecodeError, what: string): number {
  let n = 0;
  // zlib wrapper: 2 header bytes, then raw deflate (fflate's Inflate); the Adler-32 trailer is left to the decoder
  const inflater = new Inflate((chunk) => {
    n += chunk.length;
    if (n > cap) throw over(n);
  });
  let skip = 2;
  try {
    for (let k = 0; k < parts.length; k++) {
      let p = parts[k];
      if (skip) {
        const s = Math.min(skip, p.length);
        p = p.subarray(s);
        skip -= s;
      }
      for (let i = 0; i < p.length; i += 16 * 1024) inflater.push(p.subarray(i, i + 16 * 1024), false);
    }
    inflater.push(new Uint8Array(0), true);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    // a damaged or short stream is the decoder's to report in its words (it may still show the rows it has)
    if (/unexpected EOF/i.test((e as Error)?.message ?? '')) return n;
    throw new ImageDecodeError('corrupt', `The PNG's ${what} does not inflate: ${(e as Error)?.message ?? String(e)}`, undefined, { cause: e });
  }
  return n;
}

/**
 * Check a PNG's chunks before decoding (see the file comment). `checkImageData`: also count the IDAT stream against
 * IHDR (skipped for PNGs streamed row by row, whose reader bounds itself). Throws ImageDecodeError: 'too-large'
 * naming the chunk and the limit, 'truncated' when a chunk runs past the end of the file, 'corrupt'.
 */
export function checkPngChunks(b: Uint8Array, checkImageData = true): void {
  if (b.length < 33) return; // the decoder reports a short file
  const width = u32be(b, 16), height = u32be(b, 20), bitDepth = b[24], colorType = b[25], interlace = b[28];
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  let i = 8;
  while (i + 8 <= b.length) {
    const len = u32be(b, i);
    const type = String.fromCharCode(b[i + 4], b[i + 5], b[i + 6], b[i + 7]);
    if (i + 12 + len > b.length) {
      if (type === 'IEND') break;
      const shown = /^[A-Za-z]{4}$/.test(type) ? type : `unnamed (type bytes ${Array.from(b.subarray(i + 4, i + 8), (x) => x.toString(16).padStart(2, '0')).join(' ')})`;
      throw new ImageDecodeError('truncated', `The PNG's ${shown} chunk at byte ${i} declares ${len} bytes but the file has ${Math.max(0, b.length - i - 12)} left (the length field lies or the file was cut short)`, { chunk: type, declared: len });
    }
    const data = b.subarray(i + 8, i + 8 + len);
    if (type === 'IDAT') {
      idat.push(data);
      idatBytes += len;
    } else if (type === 'zTXt' || type === 'iCCP' || type === 'iTXt') {
      const kwEnd = data.indexOf(0);
      let start = -1;
      if (type === 'iTXt') {
        // keyword \0 flag method language \0 translated keyword \0 text
        if (kwEnd >= 0 && data[kwEnd + 1] === 1) {
          const lang = data.indexOf(0, kwEnd + 3);
          const tk = lang >= 0 ? data.indexOf(0, lang + 1) : -1;
          start = tk >= 0 ? tk + 1 : -1;
        }
      } else if (kwEnd >= 0) start = kwEnd + 2; // keyword \0 method
      if (start >= 0 && start < data.length) {
        const cap = MAX_PNG_ANCILLARY_INFLATED;
        inflateCounting([data.subarray(start)], cap, () => new ImageDecodeError('too-large', `The PNG's ${type} chunk (at byte ${i}, ${len} bytes) inflates past ${mb(cap)}, the limit for a metadata chunk: refused before any decoder inflates it (a decompression bomb)`, { chunk: type, maxBytes: cap }), `${type} chunk`);
      }
    } else if (type === 'IEND') break;
    i += 12 + len;
  }
  if (!checkImageData || idat.length === 0 || width === 0 || height === 0) return;
  const need = pngRawDataSize(width, height, bitDepth, colorType, interlace);
  const cap = need + IDAT_SLACK;
  const got = inflateCounting(idat, cap, () => new ImageDecodeError('too-large', `The PNG's image data (IDAT, ${mb(idatBytes)} compressed) inflates past the ${mb(need)} its IHDR needs (${width}×${height}, ${bitDepth}-bit, colour type ${colorType}${interlace === 1 ? ', interlaced' : ''}): refused before decoding (a decompression bomb)`, { chunk: 'IDAT', maxBytes: cap }), 'image data (IDAT)');
  if (got < need) {
    // Rows missing: a decoder would still allocate the whole image IHDR declares (a few KB claiming 100 MP costs
    // 400 MB) for data that is not there. libpng stops with "Not enough image data"; so does this, before decoding.
    throw new ImageDecodeError('truncated', `The PNG's image data (IDAT) inflates to ${mb(got)}, but its IHDR (${width}×${height}, ${bitDepth}-bit, colour type ${colorType}) needs ${mb(need)}: rows are missing (the file was cut short, or IHDR lies)`, { chunk: 'IDAT', inflated: got, needed: need });
  }
}
