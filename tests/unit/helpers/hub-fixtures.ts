/**
 * Tiny random-weight models in the Hugging Face Hub / transformers.js layout (issue 20), written by
 * `cxr-export hub-fixtures` (export-scripts/cxr_export/hub_fixtures*.py) into tests/.hub-fixtures/ (git-ignored) and
 * rebuilt when the generator changed: after a full run it writes _goldens/stamp.json {sources, hash} (sha256 over
 * those cxr_export modules), which is recomputed here. Served by scripts/hub-server.mjs. Layout and goldens: the
 * module docstring of hub_fixtures.py.
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

/** The folder holds a full run of the current generator (hub_fixtures.is_fresh, same hash). */
export function hubFixturesFresh(root = HUB_FIXTURES_DIR): boolean {
  try {
    const stamp = JSON.parse(fs.readFileSync(path.join(root, '_goldens', 'stamp.json'), 'utf8')) as
      { sources: string[]; hash: string };
    const h = crypto.createHash('sha256');
    for (const f of stamp.sources) h.update(fs.readFileSync(path.join(REPO_ROOT, 'export-scripts/cxr_export', f)));
    return h.digest('hex').slice(0, 16) === stamp.hash;
  } catch {
    return false;
  }
}

/**
 * The hub fixtures root (tests/.hub-fixtures), generated on first use or when the generator changed (about 2-3 min);
 * null without PyTorch. The generator replaces each repo folder whole and writes the stamp last.
 */
export function ensureHubFixtures(): string | null {
  if (!hasTorch) return null;
  if (hubFixturesFresh()) return HUB_FIXTURES_DIR;
  execFileSync(PYTHON, ['-m', 'cxr_export', 'hub-fixtures', '--out', HUB_FIXTURES_DIR], {
    cwd: path.join(REPO_ROOT, 'export-scripts'),
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  return HUB_FIXTURES_DIR;
}

/** A golden of the generator: _goldens/<name>.json (format: hub_fixtures.py docstring, /work/notes/hub-fixtures.md). */
export function readHubGolden<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(HUB_FIXTURES_DIR, '_goldens', `${name}.json`), 'utf8')) as T;
}
