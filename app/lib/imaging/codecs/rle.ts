/**
 * RLE Lossless (1.2.840.10008.1.2.5, PS3.5 Annex G). No maintained JS package decodes DICOM's RLE, and Annex G is
 * a 30-line PackBits variant, so it is implemented here. Output: the frame's byte planes (most significant byte of
 * each sample first, PS3.5 G.2), one per segment.
 */
import { ImageDecodeError } from '../errors';

/** Decode one RLE frame (64-byte header + segments) into `segments` byte planes of `planeLength` bytes. */
export function decodeRleFrame(frame: Uint8Array, planeLength: number): Uint8Array[] {
  if (frame.length < 64) throw new ImageDecodeError('corrupt', 'The RLE frame is shorter than its 64-byte header (PS3.5 G.5)');
  const dv = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const n = dv.getUint32(0, true);
  if (n < 1 || n > 15) throw new ImageDecodeError('corrupt', `The RLE header declares ${n} segments (1 to 15 allowed, PS3.5 G.5)`);
  const offsets: number[] = [];
  for (let i = 0; i < n; i++) offsets.push(dv.getUint32(4 + 4 * i, true));
  // Before any plane is allocated: a PackBits replicate run turns 2 bytes into at most 128 (PS3.5 G.3.1), so a
  // segment shorter than planeLength / 64 cannot fill its plane (a tiny frame under a header claiming 100 MP).
  for (let s = 0; s < n; s++) {
    const len = (s + 1 < n ? offsets[s + 1] : frame.length) - offsets[s];
    if (len >= 0 && len * 64 < planeLength) {
      throw new ImageDecodeError('truncated', `RLE segment ${s + 1} holds ${len} bytes, which expand to at most ${len * 64} of the ${planeLength} its plane needs (PS3.5 G.3.1): the compressed pixel data is truncated or Rows/Columns lie`);
    }
  }
  const planes: Uint8Array[] = [];
  for (let s = 0; s < n; s++) {
    const start = offsets[s];
    const end = s + 1 < n ? offsets[s + 1] : frame.length;
    if (start < 64 || start > frame.length || end < start) {
      throw new ImageDecodeError('corrupt', `RLE segment ${s + 1} has offset ${start}, outside its ${frame.length}-byte frame`);
    }
    const out = new Uint8Array(planeLength);
    let i = start;
    let o = 0;
    while (i < end && o < planeLength) {
      const h = (frame[i++] << 24) >> 24; // int8 header byte
      if (h >= 0) {
        const count = Math.min(h + 1, planeLength - o, end - i);
        out.set(frame.subarray(i, i + count), o);
        i += h + 1;
        o += count;
      } else if (h !== -128) {
        const count = Math.min(1 - h, planeLength - o);
        out.fill(frame[i++], o, o + count);
        o += count;
      }
    }
    if (o < planeLength) throw new ImageDecodeError('truncated', `RLE segment ${s + 1} ends after ${o} of ${planeLength} bytes: the compressed pixel data is truncated`);
    planes.push(out);
  }
  return planes;
}

/**
 * Byte planes → little-endian interleaved samples (colour-by-pixel), as the native pipeline reads them.
 * Throws when the segment count is not SamplesPerPixel × BitsAllocated/8 (PS3.5 G.2).
 */
export function rlePlanesToSamples(planes: Uint8Array[], npix: number, samplesPerPixel: number, bytesPerSample: number): Uint8Array {
  const expected = samplesPerPixel * bytesPerSample;
  if (planes.length !== expected) throw new ImageDecodeError('corrupt', `The RLE frame has ${planes.length} segments, expected ${expected} (SamplesPerPixel ${samplesPerPixel} × ${bytesPerSample} bytes)`);
  const out = new Uint8Array(npix * expected);
  for (let s = 0; s < samplesPerPixel; s++) {
    for (let b = 0; b < bytesPerSample; b++) {
      const plane = planes[s * bytesPerSample + b];
      const byteIndex = bytesPerSample - 1 - b; // segment b holds significance b (MSB first)
      for (let p = 0; p < npix; p++) out[(p * samplesPerPixel + s) * bytesPerSample + byteIndex] = plane[p];
    }
  }
  return out;
}
