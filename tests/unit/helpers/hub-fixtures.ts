/**
 * Tiny random-weight models in the Hugging Face Hub / transformers.js layout (issue 20), written by
 * `cxr-export hub-fixtures` (export-scripts/cxr_export/hub_fixtures*.py) into tests/.hub-fixtures/ (git-ignored) and
 * rebuilt when those modules change (a stamp file holds the hash of their sources). Served by scripts/hub-server.mjs.
 * Layout and goldens: /work/notes/hub-fixtures.md and the module docstring of hub_fixtures.py.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { PYTHON, REPO_ROOT } from './shared';
import { hasTorch } from './fixtures';

export const HUB_FIXTURES_DIR = path.join(REPO_ROOT, 'tests', '.hub-fixtures');
export const HUB_ORG = 'cxr-fixtures';
/** Repo ids the generator writes (owner/name). */
export const HUB_REPOS = ['tiny-clip', 'tiny-siglip', 'tiny-sam', 'tiny-sam-boxes', 'tiny-vit-cxr', 'tiny-bert'].map(
  (n) => `${HUB_ORG}/${n}`,
);

const SOURCES = ['hub_fixtures.py', 'hub_fixtures_common.py', 'hub_fixtures_text.py', 'hub_fixtures_sam.py', 'sam_models.py', 'quantize.py',
  'sam_layouts_hf.py', 'sam_layouts_cases.py'].map((f) => path.join(REPO_ROOT, 'export-scripts/cxr_export', f));

function sourceHash(): string {
  const h = crypto.createHash('sha256');
  for (const f of SOURCES) h.update(fs.readFileSync(f));
  return h.digest('hex').slice(0, 16);
}

/**
 * The hub fixtures root (tests/.hub-fixtures), generated on first use or when the generator changed; null without
 * PyTorch. Concurrent callers: the generator replaces each repo folder whole, and the stamp is written last.
 */
export function ensureHubFixtures(): string | null {
  if (!hasTorch) return null;
  const stamp = path.join(HUB_FIXTURES_DIR, '_goldens', 'stamp');
  const want = sourceHash();
  if (fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === want) return HUB_FIXTURES_DIR;
  execFileSync(PYTHON, ['-m', 'cxr_export', 'hub-fixtures', '--out', HUB_FIXTURES_DIR], {
    cwd: path.join(REPO_ROOT, 'export-scripts'),
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  fs.writeFileSync(stamp, want + '\n');
  return HUB_FIXTURES_DIR;
}

/** A golden of the generator: _goldens/<name>.json (format: hub_fixtures.py docstring). */
export function readHubGolden<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(HUB_FIXTURES_DIR, '_goldens', `${name}.json`), 'utf8')) as T;
}
