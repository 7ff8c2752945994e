/**
 * Issue 19 items 1 and 5: zip entries are checked against the per-file limit from their headers BEFORE a byte is
 * inflated, inflated with a cap at their declared size (headers can lie), and unsafe names are made safe (as Python's
 * zipfile extracts them) or skipped, every entry accounted for. Archives: ../shared/data/adversarial (a 1 GiB bomb,
 * traversal names) and others of the same kinds written here by fflate and Python's zipfile.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { zipSync } from 'fflate';
import { blobSource, bytesSource, listZip, readZipAll, readZipEntry, sanitizeEntryPath, ZipReadError } from '../../../app/lib/batch/zip';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { hasPython, hasShared, PYTHON, readBytes, sharedPath } from '../helpers/shared';

const ADV = 'data/adversarial/cases';

/** Overwrite the uncompressed-size fields of every local (offset 22) and central (offset 24) header. */
function lieAboutSize(zip: Uint8Array, size: number): Uint8Array {
  const z = new Uint8Array(zip);
  const dv = new DataView(z.buffer);
  for (let i = 0; i + 4 <= z.length; i++) {
    const sig = dv.getUint32(i, true);
    if (sig === 0x04034b50) dv.setUint32(i + 22, size, true);
    if (sig === 0x02014b50) dv.setUint32(i + 24, size, true);
  }
  return z;
}

describe('zip: memory bounded before it is spent', () => {
  it.skipIf(!hasShared(ADV, '05-zip-bomb-1gib-zeros'))('adversarial 05: the 1 GiB entry is skipped from its header, named, before inflating; the valid one is read', async () => {
    const file = sharedPath(ADV, '05-zip-bomb-1gib-zeros/batch.zip');
    const rss0 = process.memoryUsage().rss;
    const src = blobSource(await fs.openAsBlob(file));
    const listing = await listZip(src);
    expect(listing.entries.map((e) => e.path)).toEqual(['NORMAL/ok.png']);
    expect(listing.skipped).toHaveLength(1);
    expect(listing.skipped[0].path).toBe('NORMAL/zeros.png');
    expect(listing.skipped[0].reason).toMatch(/1\.0 GiB.*per-file limit of 256 MB.*before inflating/);
    const img = await decodeImageFileNode(await readZipEntry(src, listing.entries[0]));
    expect(img.width).toBe(64);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(64 * 2 ** 20);
  });

  it.skipIf(!hasShared(ADV, '05-zip-bomb-1gib-zeros'))('fuzz regression (seed 7 #455): the 1 GiB entry with a header declaring 255 bytes is stopped at 255, memory bounded', async () => {
    const zip = lieAboutSize(readBytes(sharedPath(ADV, '05-zip-bomb-1gib-zeros/batch.zip')), 255);
    const src = bytesSource(zip);
    const listing = await listZip(src);
    const bomb = listing.entries.find((e) => e.path === 'NORMAL/zeros.png')!;
    expect(bomb.size).toBe(255);
    const rss0 = process.memoryUsage().rss;
    await expect(readZipEntry(src, bomb)).rejects.toThrow(/NORMAL\/zeros\.png: inflates past the 255 bytes its header declares/);
    expect(process.memoryUsage().rss - rss0).toBeLessThan(96 * 2 ** 20);
  });

  it('a smaller per-file limit skips by compressed size too (a stored entry), and readZipEntry refuses one listed elsewhere', async () => {
    const big = new Uint8Array(300_000).map((_, i) => (i * 7919) % 251);
    const zip = zipSync({ 'a.png': [big, { level: 0 }], 'b.png': [new Uint8Array(10), { level: 0 }] });
    const listing = await listZip(bytesSource(zip), { maxEntryBytes: 100_000 });
    expect(listing.entries.map((e) => e.path)).toEqual(['b.png']);
    expect(listing.skipped[0]).toMatchObject({ path: 'a.png' });
    expect(listing.skipped[0].reason).toMatch(/per-file limit/);
    const all = await listZip(bytesSource(zip));
    await expect(readZipEntry(bytesSource(zip), all.entries[0], 100_000)).rejects.toThrow(/over the per-file limit/);
  });

  it('an entry whose header declares less than it inflates to is stopped at the declared size (the header lies)', async () => {
    const zeros = new Uint8Array(8 * 2 ** 20); // 8 MiB deflates to ~8 KB
    const zip = lieAboutSize(zipSync({ 'NORMAL/x.png': zeros }), 1000);
    const src = bytesSource(zip);
    const listing = await listZip(src);
    expect(listing.entries[0].size).toBe(1000);
    const err = await readZipEntry(src, listing.entries[0]).catch((e) => e);
    expect(err).toBeInstanceOf(ZipReadError);
    expect(err.message).toMatch(/NORMAL\/x\.png: inflates past the 1000 bytes its header declares/);
    // and one that declares more than it holds falls short, named
    const short = lieAboutSize(zipSync({ 'y.png': new Uint8Array(100) }), 5000);
    await expect(readZipAll(short).then((r) => r.skipped[0].reason)).resolves.toMatch(/y\.png: inflated to 100 bytes, the directory says 5000/);
  });
});

describe('zip: unsafe entry names are made safe or skipped, each accounted for', () => {
  it.skipIf(!hasShared(ADV, '16-zip-traversal-names'))('adversarial 16: all 7 entries are read under safe names, the 6 unsafe ones listed with their stored names', async () => {
    const zip = readBytes(sharedPath(ADV, '16-zip-traversal-names/batch.zip'));
    const listing = await listZip(bytesSource(zip));
    expect(listing.entries.length + listing.skipped.length + listing.ignored).toBe(7);
    expect(listing.entries).toHaveLength(7);
    for (const e of listing.entries) {
      expect(e.path).not.toMatch(/(^|\/)\.\.(\/|$)|^\/|^[A-Za-z]:|\\/);
    }
    expect(listing.renamed.map((r) => r.storedPath).sort()).toEqual(
      ['../NORMAL/up-one.png', '../../../../../../tmp/qa-adv-evil.png', '/abs/PNEUMONIA/absolute.png', 'NORMAL/..\\..\\windows-dotdot.png', 'C:/Windows/Temp/drive.png', 'NORMAL/sub/../../../escape.png'].sort(),
    );
    const byStored = Object.fromEntries(listing.renamed.map((r) => [r.storedPath, r.path]));
    expect(byStored['../../../../../../tmp/qa-adv-evil.png']).toBe('tmp/qa-adv-evil.png');
    expect(byStored['C:/Windows/Temp/drive.png']).toBe('Windows/Temp/drive.png');
    for (const e of listing.entries) expect((await decodeImageFileNode(await readZipEntry(bytesSource(zip), e))).width).toBe(64);
  });

  it.skipIf(!hasPython)("other unsafe names written by Python's zipfile: sanitised as zipfile extracts them; empty or colliding ones skipped, named", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'zip-names-'));
    try {
      const names = ['PNEUMONIA/a.png', '..\\..\\PNEUMONIA\\a.png', 'D:\\scans\\b.png', './/./c.png', '../..', '//server/share/d.png', 'e/.hidden.png', 'dir/'];
      execFileSync(PYTHON, ['-c', `
import sys, zipfile, json
names = json.loads(sys.argv[2])
with zipfile.ZipFile(sys.argv[1], "w") as z:
    for n in names:
        zi = zipfile.ZipInfo(n)
        z.writestr(zi, b"" if n.endswith("/") else b"x" * 10)
`, path.join(dir, 'n.zip'), JSON.stringify(names)]);
      const listing = await listZip(bytesSource(readBytes(path.join(dir, 'n.zip'))));
      expect(listing.entries.length + listing.skipped.length + listing.ignored).toBe(names.length);
      expect(listing.entries.map((e) => e.path)).toEqual(['PNEUMONIA/a.png', 'scans/b.png', 'c.png', 'server/share/d.png']);
      const skipped = Object.fromEntries(listing.skipped.map((s) => [s.path, s.reason]));
      expect(skipped['..\\..\\PNEUMONIA\\a.png']).toMatch(/already another entry's name/);
      expect(skipped['../..']).toMatch(/nothing left/);
      expect(listing.ignored).toBe(2); // the hidden file and the directory
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('sanitizeEntryPath follows zipfile: drive, leading separators, ".", ".." and empty segments dropped', () => {
    expect(sanitizeEntryPath('../../etc/passwd')).toBe('etc/passwd');
    expect(sanitizeEntryPath('C:\\Windows\\x.png')).toBe('Windows/x.png');
    expect(sanitizeEntryPath('a/./b//c/../d.png')).toBe('a/b/c/d.png');
    expect(sanitizeEntryPath('/')).toBe('');
  });
});
