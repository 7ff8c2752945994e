/**
 * Zip input (issue 8 item 4, bug report 13; item 7: entries read on demand). Archives are written by Python's
 * zipfile (an independent writer: stored, deflate, bzip2, LZMA, zip64) and by the bug report's own file.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { zipSync } from 'fflate';
import { blobSource, bytesSource, listZip, readZipAll, readZipEntry, ZipReadError } from '../../../app/lib/batch';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { hasPython, hasShared, PYTHON, readBytes, sharedPath } from '../helpers/shared';

const BUG13 = 'data/bugreports/13-zip-deflate64-entry';

describe('zip: unsupported entries are skipped, the rest is read', () => {
  it.skipIf(!hasShared(BUG13))('bug report 13: the deflate entry is read, the Deflate64 one is named as skipped', async () => {
    const { entries, skipped } = await readZipAll(readBytes(sharedPath(BUG13, 'batch.zip')));
    expect(entries.map((e) => e.path)).toEqual(['NORMAL/a.png']);
    expect(skipped).toHaveLength(1);
    expect(skipped[0].path).toBe('PNEUMONIA/b.png');
    expect(skipped[0].reason).toMatch(/method 9 \(Deflate64\) is not supported/);
    const img = await decodeImageFileNode(entries[0].bytes);
    expect(img.width).toBeGreaterThan(0);
  });

  it.skipIf(!hasPython)('stored, deflate, bzip2, LZMA and zip64 archives written by Python zipfile', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-test-'));
    try {
      execFileSync(PYTHON, ['-c', `
import zipfile, sys, os
d = sys.argv[1]
data = {n: os.urandom(3000) + bytes(5000) for n in ["s.bin", "d.bin", "b.bin", "l.bin", "ü/name.bin"]}
with zipfile.ZipFile(os.path.join(d, "mixed.zip"), "w") as z:
    z.writestr("s.bin", data["s.bin"], compress_type=zipfile.ZIP_STORED)
    z.writestr("d.bin", data["d.bin"], compress_type=zipfile.ZIP_DEFLATED)
    z.writestr("b.bin", data["b.bin"], compress_type=zipfile.ZIP_BZIP2)
    z.writestr("l.bin", data["l.bin"], compress_type=zipfile.ZIP_LZMA)
    z.writestr("ü/name.bin", data["ü/name.bin"], compress_type=zipfile.ZIP_DEFLATED)
with zipfile.ZipFile(os.path.join(d, "zip64.zip"), "w", allowZip64=True) as z:
    for n in ["s.bin", "d.bin"]:
        with z.open(n, "w", force_zip64=True) as f:
            f.write(data[n])
for n, b in data.items():
    open(os.path.join(d, n.replace("/", "_")), "wb").write(b)
`, dir]);
      const want = (n: string) => readBytes(path.join(dir, n.replace('/', '_')));
      const mixed = await readZipAll(readBytes(path.join(dir, 'mixed.zip')));
      expect(mixed.entries.map((e) => e.path)).toEqual(['d.bin', 's.bin', 'ü/name.bin']);
      for (const e of mixed.entries) expect(Buffer.from(e.bytes).equals(Buffer.from(want(e.path))), e.path).toBe(true);
      expect(mixed.skipped.map((s) => [s.path, s.reason.match(/\((\w+)\)/)?.[1]])).toEqual([['b.bin', 'bzip2'], ['l.bin', 'LZMA']]);
      const z64 = await readZipAll(readBytes(path.join(dir, 'zip64.zip')));
      expect(z64.entries.map((e) => e.path)).toEqual(['d.bin', 's.bin']);
      for (const e of z64.entries) expect(Buffer.from(e.bytes).equals(Buffer.from(want(e.path)))).toBe(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a damaged entry (CRC-32 mismatch) is skipped with its reason; the others are read', async () => {
    const z = zipSync({ 'a.png': new Uint8Array(100).fill(7), 'b.png': new Uint8Array(100).fill(9) }, { level: 0 });
    const src = bytesSource(z);
    const { entries } = await listZip(src);
    const b = entries.find((e) => e.path === 'b.png')!;
    const broken = z.slice();
    broken[b.localHeaderOffset + 30 + 'b.png'.length + 10] ^= 0xff; // flip a stored byte
    const out = await readZipAll(broken);
    expect(out.entries.map((e) => e.path)).toEqual(['a.png']);
    expect(out.skipped).toEqual([{ path: 'b.png', reason: 'b.png: CRC-32 mismatch (the entry is damaged)' }]);
  });

  it('a truncated archive names the cause', async () => {
    const z = zipSync({ 'a.png': new Uint8Array(1000) });
    await expect(listZip(bytesSource(z.subarray(0, z.length - 30)))).rejects.toThrow(/no end-of-central-directory record/);
    await expect(listZip(bytesSource(new Uint8Array(10)))).rejects.toThrow(ZipReadError);
  });
});

describe('zip: read on demand from a Blob (bounded memory)', () => {
  it('lists the central directory and reads one entry with slices of a file Blob only', async () => {
    const files: Record<string, Uint8Array> = {};
    // incompressible content, so the archive is large (6 MB) next to its central directory
    for (let i = 0; i < 300; i++) files[`NORMAL/img${String(i).padStart(4, '0')}.png`] = new Uint8Array(randomBytes(20_000));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-blob-'));
    const p = path.join(dir, 'big.zip');
    fs.writeFileSync(p, zipSync(files, { level: 1 }));
    try {
      const blob = await fs.openAsBlob(p);
      let bytesRead = 0;
      const inner = blobSource(blob);
      const src = { size: inner.size, read: async (o: number, l: number) => { const b = await inner.read(o, l); bytesRead += b.length; return b; } };
      const { entries, skipped } = await listZip(src);
      expect(entries).toHaveLength(300);
      expect(skipped).toEqual([]);
      const listBytes = bytesRead;
      expect(listBytes).toBeLessThan(blob.size / 4); // central directory and tail only
      const e = entries[123];
      const out = await readZipEntry(src, e);
      expect(out.length).toBe(20_000);
      expect(Buffer.from(out).equals(Buffer.from(files[e.path]))).toBe(true);
      expect(bytesRead - listBytes).toBeLessThanOrEqual(30 + e.compressedSize);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('bug report 14: ground-truth CSV with BOM, CRLF, a quoted name with a comma, mixed-case labels', () => {
  const DIR = 'data/bugreports/14-csv-bom-crlf-quoted';
  it.skipIf(!hasShared(DIR))('reads every row as the expected values say', async () => {
    const { groundTruthFromCsv } = await import('../../../app/lib/batch');
    const exp = JSON.parse(fs.readFileSync(sharedPath(DIR, 'expected.json'), 'utf8')) as { truth: Record<string, string>; n_with_ground_truth: number };
    const table = groundTruthFromCsv(fs.readFileSync(sharedPath(DIR, 'truth.csv'), 'utf8'), ['NORMAL', 'PNEUMONIA']);
    const images = fs.readdirSync(sharedPath(DIR, 'images')).sort();
    const found = Object.fromEntries(images.map((f) => [f, table.lookup(`images/${f}`)]).filter(([, v]) => v));
    expect(found).toEqual(exp.truth);
    expect(Object.keys(found)).toHaveLength(exp.n_with_ground_truth);
  });
});
