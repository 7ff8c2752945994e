/**
 * Reading input image files in Node (npm run label, convert, segment-eval): the folder walk, and each file with its
 * size checked BEFORE the read: fs.stat first, then at most the limit + 1 bytes read (a file that grows meanwhile is
 * refused, not read whole).
 */
import fs from 'node:fs';
import path from 'node:path';
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

/**
 * The files under `dir`, recursively, sorted by name within each folder: symlinks followed, each real directory
 * walked once (a link loop ends), hidden entries (a leading '.') and dangling links skipped. The one folder walk of
 * the CLIs (label, convert).
 */
export function walkFiles(dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const rec = (d: string) => {
    const real = fs.realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    for (const name of fs.readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const p = path.join(d, name);
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (st?.isDirectory()) rec(p);
      else if (st?.isFile()) out.push(p);
    }
  };
  rec(dir);
  return out;
}
