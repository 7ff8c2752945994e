/**
 * Tiny random-weight models for tests, in one models root with one manifest.json:
 * - tiny-vit: tests/unit/fixtures/make_tiny_classifier.py (PyTorch), cached in the OS temp dir by script hash;
 * - tiny-biomedclip: the export in public/models when there is one (linked, not copied), else built with
 *   export-scripts' own exporter (`cxr_export clip --random-init --size tiny`), cached by exporter hash.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { hasPython, PYTHON, REPO_ROOT } from './shared';

const VIT_SCRIPT = path.join(REPO_ROOT, 'tests/unit/fixtures/make_tiny_classifier.py');
const CLIP_EXPORTER = path.join(REPO_ROOT, 'export-scripts/cxr_export/clip.py');
const PUBLIC = path.join(REPO_ROOT, 'public/models');

/** Which Python modules are installed (find_spec: no import, fast). */
function probe(mods: string[]): boolean {
  if (!hasPython) return false;
  const code = `import importlib.util,sys; sys.exit(0 if all(importlib.util.find_spec(m) for m in ${JSON.stringify(mods)}) else 1)`;
  return spawnSync(PYTHON, ['-c', code], { stdio: 'ignore' }).status === 0;
}

interface Entry { id: string; variants: Record<string, { files: { path: string }[] }> }

function publicClipEntry(): Entry | null {
  try {
    const m = JSON.parse(fs.readFileSync(path.join(PUBLIC, 'manifest.json'), 'utf8')) as { models: Entry[] };
    const e = m.models.find((x) => x.id === 'tiny-biomedclip');
    if (!e) return null;
    const files = Object.values(e.variants).flatMap((v) => v.files);
    return files.every((f) => fs.existsSync(path.join(PUBLIC, f.path))) ? e : null;
  } catch {
    return null;
  }
}

export const hasTorch = probe(['torch', 'PIL', 'numpy']);
const canExportClip = hasTorch && fs.existsSync(CLIP_EXPORTER) && probe(['open_clip', 'onnxruntime', 'tokenizers']);
/** A tiny BiomedCLIP can be had (public/models or the exporter) and Python can compute references for it. */
export const hasClipExporter = hasTorch && probe(['onnxruntime', 'tokenizers']) && (publicClipEntry() !== null || canExportClip);

function hashOf(parts: (string | Buffer)[]): string {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex').slice(0, 16);
}

/** Build into a temp dir and move it into place atomically (parallel test workers may race). */
function cached(dir: string, build: (tmp: string) => void): string {
  if (fs.existsSync(path.join(dir, 'manifest.json'))) return dir;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-test-build-'));
  build(tmp);
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}

/** Models root with tiny-vit (and tiny-biomedclip when available); null without PyTorch. */
export function ensureTinyModels(): string | null {
  if (!hasTorch) return null;
  const vitDir = cached(path.join(os.tmpdir(), `cxr-test-tinyvit-${hashOf([fs.readFileSync(VIT_SCRIPT)])}`), (tmp) => {
    execFileSync(PYTHON, [VIT_SCRIPT, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  });
  const vitManifest = JSON.parse(fs.readFileSync(path.join(vitDir, 'manifest.json'), 'utf8'));
  const pub = publicClipEntry();
  let clipRoot: string | null = null;
  let clipEntry: Entry | null = null;
  if (pub) {
    clipRoot = PUBLIC;
    clipEntry = pub;
  } else if (canExportClip) {
    clipRoot = cached(path.join(os.tmpdir(), `cxr-test-tinyclip-${hashOf([fs.readFileSync(CLIP_EXPORTER)])}`), (tmp) => {
      execFileSync(PYTHON, ['-m', 'cxr_export', 'clip', '--random-init', '--size', 'tiny', '--id', 'tiny-biomedclip', '--out-dir', tmp], {
        cwd: path.join(REPO_ROOT, 'export-scripts'),
        stdio: ['ignore', 'ignore', 'pipe'],
      });
    });
    clipEntry = (JSON.parse(fs.readFileSync(path.join(clipRoot, 'manifest.json'), 'utf8')) as { models: Entry[] }).models.find((x) => x.id === 'tiny-biomedclip') ?? null;
  }
  if (!clipRoot || !clipEntry) return vitDir;
  const key = hashOf([JSON.stringify(vitManifest), JSON.stringify(clipEntry), clipRoot]);
  return cached(path.join(os.tmpdir(), `cxr-test-models-${key}`), (tmp) => {
    for (const m of vitManifest.models as Entry[]) fs.symlinkSync(path.join(vitDir, m.id), path.join(tmp, m.id));
    fs.symlinkSync(path.join(clipRoot!, 'tiny-biomedclip'), path.join(tmp, 'tiny-biomedclip'));
    fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify({ version: 1, models: [...vitManifest.models, clipEntry] }));
  });
}
