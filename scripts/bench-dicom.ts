/**
 * Decode timing per DICOM file in Node (prints numbers; not a test): first decode (codec module + wasm start) and
 * the median of the next runs, for every file of ../shared/data/dicom-codecs (or the folders given).
 *
 *   npx tsx scripts/bench-dicom.ts [DIR...] [--runs 5]
 */
import fs from 'node:fs';
import path from 'node:path';
import { decodeImageFileNode } from '../app/platform/node/decode';

const argv = process.argv.slice(2);
const ri = argv.indexOf('--runs');
const runs = ri >= 0 ? Number(argv.splice(ri, 2)[1]) : 5;
const dirs = argv.length ? argv : [path.resolve(import.meta.dirname, '../../shared/data/dicom-codecs/files')];
const rows: string[] = ['| file | transfer syntax | size | first ms | median ms | MP/s |', '| --- | --- | --- | --- | --- | --- |'];
for (const dir of dirs) {
  for (const f of fs.readdirSync(dir).sort()) {
    const bytes = new Uint8Array(fs.readFileSync(path.join(dir, f)));
    let t = performance.now();
    const first = await decodeImageFileNode(bytes);
    const firstMs = performance.now() - t;
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      t = performance.now();
      await decodeImageFileNode(bytes);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const med = times[Math.floor(times.length / 2)];
    const mp = (first.width * first.height) / 1e6;
    rows.push(`| ${f} | ${first.dicom?.metadata.TransferSyntaxUID} | ${first.width}×${first.height} | ${firstMs.toFixed(0)} | ${med.toFixed(1)} | ${(mp / (med / 1000)).toFixed(1)} |`);
  }
}
console.log(rows.join('\n'));
