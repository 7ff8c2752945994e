/**
 * The inflater dicom-parser calls for Deflated Explicit VR Little Endian (1.2.840.10008.1.2.1.99, PS3.5 A.5): the
 * data set after the File Meta Information is raw deflate (RFC 1951). Inflated here in 16 KiB input slices with
 * fflate's streaming Inflate and a cap on the output set BEFORE inflating, so a small file that inflates to
 * gigabytes (a decompression bomb) is refused once the cap is passed. Two passes: the first only counts, so a bomb
 * costs one slice's output (~17 MB) whatever the cap; the second writes into a buffer of the counted size. A
 * deflated file within the cap costs one inflated copy and twice the inflate time.
 */
import type * as dicomParserNs from 'dicom-parser';
import { Inflate } from 'fflate';
import { ImageDecodeError } from './errors';

/** Default cap on an inflated data set: the per-file limit (256 MiB), as if the file had been stored uncompressed. */
export const MAX_INFLATED_DATASET_BYTES = 256 * 1024 * 1024;

const SLICE = 16 * 1024; // deflate expands at most ~1032:1, so one slice adds at most ~17 MB past the cap

function mib(n: number): string {
  return n >= 10 * 2 ** 20 ? `${Math.round(n / 2 ** 20)} MB` : `${(n / 2 ** 20).toFixed(2)} MB`;
}

/**
 * Raw-inflate `arr[position..]` into a new array that keeps `arr[0..position)` in front (what dicom-parser's
 * `inflater` option returns). Throws ImageDecodeError 'too-large' naming the cap as soon as the output passes
 * `maxBytes`, 'corrupt' when the stream does not inflate.
 */
export function inflateDataSet(arr: Uint8Array, position: number, maxBytes = MAX_INFLATED_DATASET_BYTES): Uint8Array {
  const body = arr.subarray(position);
  // Pass 1 counts (nothing kept): a bomb is refused having held one slice's output, not the cap.
  let total = 0;
  run(body, (chunk) => {
    total += chunk.length;
    if (total > maxBytes) {
      throw new ImageDecodeError(
        'too-large',
        `The Deflated Explicit VR Little Endian data set inflates to more than ${mib(maxBytes)} (the limit for one file; ${mib(arr.length)} on disk): refused before inflating further (a decompression bomb, or an image too large to open here)`,
        { inflatedAtLeast: total, maxBytes, compressedBytes: body.length },
      );
    }
  });
  // Pass 2 writes into a buffer of exactly the size counted (one allocation, no chunks to join).
  const full = new Uint8Array(position + total);
  full.set(arr.subarray(0, position), 0);
  let o = position;
  run(body, (chunk) => {
    full.set(chunk.subarray(0, Math.max(0, full.length - o)), o);
    o += chunk.length;
  });
  return full;
}

function run(body: Uint8Array, ondata: (chunk: Uint8Array) => void): void {
  const inflater = new Inflate((chunk) => ondata(chunk));
  try {
    if (body.length === 0) inflater.push(new Uint8Array(0), true);
    for (let i = 0; i < body.length; i += SLICE) inflater.push(body.subarray(i, i + SLICE), i + SLICE >= body.length);
  } catch (e) {
    if (e instanceof ImageDecodeError) throw e;
    throw new ImageDecodeError('corrupt', `The Deflated Explicit VR Little Endian data set does not inflate: ${e instanceof Error ? e.message : String(e)}`, undefined, { cause: e });
  }
}

/** dicom-parser's `inflater` option bound to a cap. */
export function cappedInflater(maxBytes = MAX_INFLATED_DATASET_BYTES): dicomParserNs.ParseDicomOptions['inflater'] {
  return ((arr: Uint8Array, position: number) => inflateDataSet(arr, position, maxBytes)) as unknown as dicomParserNs.ParseDicomOptions['inflater'];
}
