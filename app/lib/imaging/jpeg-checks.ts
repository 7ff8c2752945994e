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
  /** Byte offset of the SOF marker. */
  sofAt: number;
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
    // SOF0-SOF15 (T.81 B.2.2), and SOF55 of JPEG-LS (T.87 C.2.2: same layout)
    if (((m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) || m === 0xf7) && i + 10 <= b.length && !frame) {
      frame = { marker: m, height: (b[i + 5] << 8) | b[i + 6], width: (b[i + 7] << 8) | b[i + 8], components: b[i + 9], sofAt: i };
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
  if (!f || f.width === 0 || f.height === 0) return;
  if (f.marker >= 0xc9) return; // arithmetic coding, or JPEG-LS (runs of up to 2^15 samples per bit: no useful bound)
  const lossless = f.marker === 0xc3 || f.marker === 0xc7;
  const units = lossless ? f.width * f.height : Math.ceil(f.width / 8) * Math.ceil(f.height / 8);
  const minBytes = Math.ceil(units / 8);
  // Scan data follows the first SOS; when segment lengths lie and SOS cannot be found, everything after the SOF
  // bounds it (decoders resynchronise on markers and would still decode into the declared size).
  const have = b.length - (f.sosAt >= 0 ? f.sosAt : f.sofAt);
  if (have < minBytes) {
    throw new ImageDecodeError(
      'truncated',
      `The ${what} declares ${f.width}×${f.height} pixels (SOF), which needs at least ${minBytes} bytes of scan data (one bit per ${lossless ? 'sample' : '8×8 block'}); it has ${have}: the header lies or the file was cut short. Refused before decoding`,
      { width: f.width, height: f.height, scanBytes: have, minBytes },
    );
  }
}

/**
 * The image size a compressed DICOM frame's own codestream declares, which is what its codec allocates: JPEG and
 * JPEG-LS from their SOF (T.81 B.2.2, T.87 C.2.2), JPEG 2000 / HTJ2K from SIZ (T.800 A.5.1: Xsiz − XOsiz,
 * Ysiz − YOsiz). Undefined when the codestream is not one of those or its header cannot be found.
 */
export function codestreamSize(b: Uint8Array): { width: number; height: number } | undefined {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xd8) {
    const f = readJpegFrame(b);
    return f ? { width: f.width, height: f.height } : undefined;
  }
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0x4f && b[2] === 0xff && b[3] === 0x51 && b.length >= 4 + 2 + 2 + 16 + 2) {
    const u32 = (i: number) => ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
    const xsiz = u32(8), ysiz = u32(12), xo = u32(16), yo = u32(20);
    return { width: xsiz - xo, height: ysiz - yo };
  }
  return undefined;
}
