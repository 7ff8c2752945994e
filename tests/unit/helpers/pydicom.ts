/**
 * pydicom as the independent reference: runs tests/unit/imaging/reference/pydicom_reference.py (pydicom 3 and the
 * pylibjpeg plugins pinned in export-scripts/requirements.txt) on a list of files, once per list, and reads back its
 * .npy outputs. Fails loudly (never skips) when the Python environment lacks them.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { readNpy, type Npy } from './npy';
import { PYTHON, REPO_ROOT } from './shared';

export const REFERENCE_SCRIPT = path.join(REPO_ROOT, 'tests/unit/imaging/reference/pydicom_reference.py');

export interface PydicomInfo {
  file: string;
  transfer_syntax?: string;
  photometric?: string;
  frames?: number;
  kinds?: string[];
  error?: string;
}

export interface PydicomRef {
  info: PydicomInfo;
  get(kind: string): Npy;
  has(kind: string): boolean;
}

export function pydicomReferences(files: string[]): PydicomRef[] {
  const script = fs.readFileSync(REFERENCE_SCRIPT);
  const key = crypto.createHash('sha256').update(script).update(files.join('\n')).update(files.map((f) => String(fs.statSync(f).size)).join(',')).digest('hex').slice(0, 16);
  const dir = path.join(os.tmpdir(), `cxr-pydicom-ref-${key}`);
  if (!fs.existsSync(path.join(dir, 'done'))) {
    fs.rmSync(dir, { recursive: true, force: true });
    const r = spawnSync(PYTHON, [REFERENCE_SCRIPT, dir, ...files], { encoding: 'utf8' });
    if (r.status !== 0) {
      throw new Error(`pydicom reference failed (${PYTHON}; pip install -r export-scripts/requirements.txt): ${r.stderr || r.error}`);
    }
    fs.writeFileSync(path.join(dir, 'done'), '');
  }
  return files.map((_, i) => {
    const info = JSON.parse(fs.readFileSync(path.join(dir, `${i}.json`), 'utf8')) as PydicomInfo;
    return {
      info,
      has: (kind: string) => fs.existsSync(path.join(dir, `${i}.${kind}.npy`)),
      get: (kind: string) => readNpy(path.join(dir, `${i}.${kind}.npy`)),
    };
  });
}
