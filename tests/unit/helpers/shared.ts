import { it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root. */
export const REPO_ROOT = path.resolve(here, '../../..');
/** ../shared beside the repo (or $CXR_SHARED). */
export const SHARED = process.env.CXR_SHARED ? path.resolve(process.env.CXR_SHARED) : path.resolve(REPO_ROOT, '..', 'shared');

export function sharedPath(...parts: string[]): string {
  return path.join(SHARED, ...parts);
}

export function hasShared(...parts: string[]): boolean {
  return fs.existsSync(sharedPath(...parts));
}

/** Reason string for it.skipIf / describe.skipIf messages. */
export function missingReason(...parts: string[]): string {
  return `shared data missing: ${sharedPath(...parts)} (set CXR_SHARED)`;
}

export function readBytes(p: string): Uint8Array {
  const b = fs.readFileSync(p);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

export const PYTHON = path.join(REPO_ROOT, '.venv', 'bin', 'python');
export const hasPython = fs.existsSync(PYTHON);

/** ../shared is on this machine (its data/ folder exists). */
export const SHARED_PRESENT = fs.existsSync(path.join(SHARED, 'data'));

/**
 * In CI, and wherever ../shared is present, an artifact a test needs (a committed model, golden or manifest entry; a
 * file of ../shared) must be there: its absence fails instead of skipping, so a missing feature never passes green.
 * Elsewhere (a checkout without ../shared) those tests skip with the reason.
 */
export const STRICT_ARTIFACTS = !!process.env.CI || SHARED_PRESENT;

/**
 * The skip condition of a test that needs an artifact: `describe.skipIf(lacks(present, what))`. Returns false when
 * present. When missing on a strict machine it also registers a failing test naming `what` (`strict` defaults to
 * STRICT_ARTIFACTS).
 */
export function lacks(present: boolean, what: string, strict = STRICT_ARTIFACTS): boolean {
  if (present) return false;
  if (strict) {
    it(`needs ${what}`, () => {
      throw new Error(`${what} is missing; in CI or with ../shared present a missing artifact fails instead of skipping`);
    });
  }
  return true;
}

/** lacks() for a file of ../shared: skipped on a machine without ../shared, a failure where ../shared is present. */
export function lacksShared(...parts: string[]): boolean {
  return lacks(hasShared(...parts), sharedPath(...parts), SHARED_PRESENT);
}
