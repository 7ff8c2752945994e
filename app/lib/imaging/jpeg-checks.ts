/**
 * A JPEG's frame header (SOF, ITU-T T.81 B.2.2) checked against the entropy-coded data that follows it, BEFORE a
 * decoder allocates the image it declares: every 8×8 block of the first component costs at least one bit in a
 * Huffman-coded scan (a DC difference code has at least one bit; T.81 F.1.2.1), and a lossless (SOF3) sample at
 * least one bit too; so data shorter than that cannot hold the image, and a SOF claiming 9999×9999 on a 7 KB file (a
 * lie that cost jpeg-js 1.5 GB and 16 s) is refused in microseconds. Arithmetic-coded frames (SOF9-SOF15) are left
 * to the decoder (no such bound).
 */
import { ImageDecodeError } from './errors';

export interface JpegFrameInfo {
  /** SOF marker (0xC0..0xCF). */
  marker: number;
  width: number;
  height: number;
  components: number;
  /** Byte offset of the first SOS marker (start of entropy-coded data), -1 when none. */
  sosAt: number;
}

/** The frame header and where the first scan starts; null when there is no SOF before the first SOS. */
export function readJpegFrame(b: Uint8Array): JpegFrameInfo | null {
  let i = 2;
  let frame: Omit<JpegFrameInfo, 'sosAt'> | null = null;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) {
      i++;
      continue;
    }
    const m = b[i + 1];
    if (m === 0xff || m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += m === 0xff ? 1 : 2;
      continue;
    }
    const len = (b[i + 2] << 8) | b[i + 3];
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc && i + 10 <= b.length && !frame) {
      frame = { marker: m, height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9] };
    }
    if (m === 0xda) return frame ? { ...frame, sosAt: i } : null;
    if (m === 0xd9) break;
    i += 2 + len;
  }
  return frame ? { ...frame, sosAt: -1 } : null;
}

/**
 * Throws ImageDecodeError 'truncated' when the scan data after the first SOS is too short for the image the SOF
 * declares (see the file comment); `what` names the input in the message ("JPEG", "JPEG frame of the DICOM file").
 */
export function checkJpegDataLength(b: Uint8Array, what = 'JPEG'): void {
  const f = readJpegFrame(b);
  if (!f || f.sosAt < 0 || f.width === 0 || f.height === 0) return;
  if (f.marker >= 0xc9) return; // arithmetic coding
  const lossless = f.marker === 0xc3 || f.marker === 0xc7;
  const units = lossless ? f.width * f.height : Math.ceil(f.width / 8) * Math.ceil(f.height / 8);
  const minBytes = Math.ceil(units / 8);
  const have = b.length - f.sosAt;
  if (have < minBytes) {
    throw new ImageDecodeError(
      'truncated',
      `The ${what} declares ${f.width}×${f.height} pixels (SOF), which needs at least ${minBytes} bytes of scan data (one bit per ${lossless ? 'sample' : '8×8 block'}); it has ${have}: the header lies or the file was cut short. Refused before decoding`,
      { width: f.width, height: f.height, scanBytes: have, minBytes },
    );
  }
}
