/**
 * Tiny random-weight models for tests, built once per content hash of their generators and cached in the OS temp
 * dir: tiny-vit (tests/unit/fixtures/make_tiny_classifier.py) and tiny-biomedclip (export-scripts' own CLIP exporter,
 * `cxr_export clip --random-init --size tiny`), in one models root with one manifest.json.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { hasPython, PYTHON, REPO_ROOT } from './shared';

const VIT_SCRIPT = path.join(REPO_ROOT, 'tests/unit/fixtures/make_tiny_classifier.py');
const CLIP_EXPORTER = path.join(REPO_ROOT, 'export-scripts/cxr_export/clip.py');

/** Which Python modules are installed (find_spec: no import, fast). */
function probe(mods: string[]): boolean {
  if (!hasPython) return false;
  const code = `import importlib.util,sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in ${JSON.stringify(mods)}) else 1)`;
  return spawnSync(PYTHON, ['-c', code], { stdio: 'ignore' }).status === 0;
}

export const hasTorch = probe(['torch', 'PIL', 'numpy']);
export const hasClipExporter = hasTorch && fs.existsSync(CLIP_EXPORTER) && probe(['open_clip', 'onnxruntime', 'tokenizers']);

function hashOf(files: string[]): string {
  const h = crypto.createHash('sha256');
  for (const f of files) if (fs.existsSync(f)) h.update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/** Models root with tiny-vit (and tiny-biomedclip when the exporter is usable); null without PyTorch. */
export function ensureTinyModels(): string | null {
  if (!hasTorch) return null;
  const deps = [VIT_SCRIPT, ...(hasClipExporter ? [CLIP_EXPORTER] : [])];
  const dir = path.join(os.tmpdir(), `cxr-test-models-${hashOf(deps)}${hasClipExporter ? '-clip' : ''}`);
  if (fs.existsSync(path.join(dir, 'manifest.json'))) return dir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-test-models-build-'));
  execFileSync(PYTHON, [VIT_SCRIPT, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  if (hasClipExporter) {
    execFileSync(PYTHON, ['-m', 'cxr_export', 'clip', '--random-init', '--size', 'tiny', '--id', 'tiny-biomedclip', '--out-dir', tmp], {
      cwd: path.join(REPO_ROOT, 'export-scripts'),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
  }
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another worker won the race
  }
  return dir;
}
