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
