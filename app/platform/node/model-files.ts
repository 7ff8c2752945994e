/** Node's ModelFiles for the inference service: the files of a variant must already be on disk, size and sha256 right. */
import fs from 'node:fs';
import path from 'node:path';
import { variantFiles } from '../../lib/models/manifest';
import { sha256Hex } from '../../lib/models/hashing';
import type { ModelFiles } from '../../lib/models/model-files';

export function nodeModelFiles(modelsDir: string): ModelFiles {
  const verified = new Set<string>();
  return {
    async ensure(entry, dtype) {
      const key = `${entry.id}|${dtype}`;
      if (verified.has(key)) return;
      const variant = entry.variants[dtype];
      if (!variant) throw new Error(`${entry.name}: no ${dtype} variant in the manifest`);
      for (const f of variantFiles(variant)) {
        const p = path.join(modelsDir, f.path);
        if (!fs.existsSync(p)) throw new Error(`Model file missing: ${p}`);
        const buf = fs.readFileSync(p);
        const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
        if (bytes.byteLength !== f.bytes) throw new Error(`${f.path}: ${bytes.byteLength} bytes, manifest says ${f.bytes}`);
        const h = await sha256Hex(bytes);
        if (h !== f.sha256) throw new Error(`${f.path}: sha256 ${h} does not match the manifest (${f.sha256})`);
      }
      verified.add(key);
    },
  };
}
