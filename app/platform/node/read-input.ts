/**
 * Reading an input image file in Node (npm run label, convert, segment-eval) with the size checked BEFORE the read:
 * fs.stat first, then at most the limit + 1 bytes read (a file that grows meanwhile is refused, not read whole).
 */
import fs from 'node:fs';
import { checkFileSize, DEFAULT_MAX_BYTES } from '../../lib/imaging/limits';

/**
 * The bytes of `file`. Throws ImageDecodeError 'too-large' naming the size and the limit (default 256 MiB) when
 * the file is larger, before reading it; fs errors (ENOENT, EACCES) as they are.
 */
export function readInputFile(file: string, maxBytes = DEFAULT_MAX_BYTES): Uint8Array {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    checkFileSize(size, maxBytes, file);
    const cap = Math.min(size, maxBytes) + 1; // one byte more shows a file that grew past the limit
    const buf = Buffer.allocUnsafe(cap);
    let n = 0;
    for (let r; n < cap && (r = fs.readSync(fd, buf, n, cap - n, n)) > 0; ) n += r;
    checkFileSize(n, maxBytes, file);
    return new Uint8Array(buf.buffer, buf.byteOffset, n);
  } finally {
    fs.closeSync(fd);
  }
}
