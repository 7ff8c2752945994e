/**
 * Shared helpers for the browser tests. Real data is read in place from ../shared (or $CXR_SHARED) beside the
 * repository root; nothing is copied into the repo. Screenshots go to tests/artifacts/ (git-ignored).
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, test, type Page, type TestInfo } from '@playwright/test';

export const REPO = path.resolve(import.meta.dirname, '../..');
export const SHARED = process.env.CXR_SHARED ?? path.resolve(REPO, '../shared');
export const KERMANY = path.join(SHARED, 'data/kermany-cxr-224');
export const DICOM_DIR = path.join(SHARED, 'data/dicom');
/** host:port of the preview server the tests run against (playwright.config.ts reads the same variable). */
export const APP_HOST = `127.0.0.1:${process.env.CXR_E2E_PORT ?? 4173}`;
export const ARTIFACTS = path.join(REPO, 'tests/artifacts');

/** The trained classifier (H1) and the tiny random fixture used where SwiftShader WebGPU would be too slow. */
export const CLASSIFIER_ID = process.env.CXR_E2E_CLASSIFIER ?? 'pneumonia-vit';
export const FIXTURE_CLASSIFIER_ID = process.env.CXR_E2E_FIXTURE_CLASSIFIER ?? 'tiny-vit-classifier';
export const CLIP_ID = process.env.CXR_E2E_CLIP ?? 'tiny-biomedclip';

export function kermanyImage(label: 'NORMAL' | 'PNEUMONIA', index = 0): string {
  const dir = path.join(KERMANY, 'test', label);
  const files = fs.readdirSync(dir).filter((f) => /\.jpe?g$/i.test(f)).sort();
  return path.join(dir, files[index]);
}

export function hasSharedData(): boolean {
  return fs.existsSync(path.join(KERMANY, 'test'));
}

/** ../shared is on this machine: a missing file of it fails its test. */
export const SHARED_PRESENT = fs.existsSync(path.join(SHARED, 'data'));
/** In CI, and wherever ../shared is present, a missing artifact fails its test instead of skipping it. */
export const STRICT_ARTIFACTS = !!process.env.CI || SHARED_PRESENT;

/**
 * A test (or describe block) that needs an artifact: a committed model or manifest entry, the build, a file of
 * ../shared. Present: nothing happens. Missing: an error on a strict machine (STRICT_ARTIFACTS), so a missing
 * feature never passes green; a skip with the reason elsewhere (a checkout without ../shared).
 */
export function needs(present: boolean, what: string, strict = STRICT_ARTIFACTS): void {
  if (present) return;
  if (strict) throw new Error(`needs ${what}, which is missing (in CI or with ../shared present this fails instead of skipping)`);
  test.skip(true, `needs ${what}`);
}

/** needs() for a file of ../shared: skipped on a machine without ../shared, a failure where it is present. */
export function needsSharedFile(file: string): void {
  needs(fs.existsSync(file), `${file} (set CXR_SHARED)`, SHARED_PRESENT);
}

/** needs() for the Kermany test images. */
export function needsSharedData(): void {
  needsSharedFile(path.join(KERMANY, 'test'));
}

/** needs() for a model of the manifest. */
export function needsModel(id: string): void {
  needs(manifestHas(id), `the model '${id}' in the model manifest`);
}

export interface ManifestLite {
  models: { id: string; family: string; weights: string; variants: Record<string, { files: { path: string; bytes: number; sha256: string }[] }> }[];
}

export function readManifest(): ManifestLite | null {
  for (const p of [path.join(REPO, 'dist/models/manifest.json'), path.join(REPO, 'public/models/manifest.json')]) {
    if (fs.existsSync(p)) return JSON.parse(fs.readFileSync(p, 'utf8')) as ManifestLite;
  }
  return null;
}

export function manifestHas(id: string): boolean {
  return !!readManifest()?.models.some((m) => m.id === id);
}

export async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`) });
}

/** Collect page errors; tests assert none happened (a crash must not hide behind a passing assertion). */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

export async function openApp(page: Page, opts: { backend?: 'auto' | 'wasm' | 'webgpu'; classifier?: string } = {}): Promise<void> {
  await page.goto('/');
  await expect(page.getByTestId('dropzone')).toBeVisible();
  if (opts.backend) await page.getByTestId('backend-select').selectOption(opts.backend);
  if (opts.classifier) {
    await expect(page.getByTestId('classifier-select').locator(`option[value="${opts.classifier}"]`)).toHaveCount(1);
    await page.getByTestId('classifier-select').selectOption(opts.classifier);
  }
}

/** Give files to the app's file picker (same path as a user choosing them). */
export async function addFiles(page: Page, files: (string | { name: string; mimeType: string; buffer: Buffer })[]): Promise<void> {
  const payload = files.map((f) =>
    typeof f === 'string' ? { name: path.basename(f), mimeType: 'application/octet-stream', buffer: fs.readFileSync(f) } : f,
  );
  await page.getByTestId('file-input').setInputFiles(payload);
}

export async function waitForClassification(page: Page, timeout = 90_000): Promise<{ label: string; confidence: string }> {
  const result = page.getByTestId('classification-result');
  await expect(result).toBeVisible({ timeout });
  return {
    label: (await page.getByTestId('predicted-label').innerText()).trim(),
    confidence: (await page.getByTestId('confidence').innerText()).trim(),
  };
}

export function logTiming(info: TestInfo, what: string, value: number | string): void {
  const text = typeof value === 'number' ? `${Math.round(value)} ms` : value;
  info.annotations.push({ type: 'timing', description: `${what}: ${text}` });
  console.log(`[timing] ${info.title}: ${what}: ${text}`);
}

/** The smallest classifier available: the random fixture when present, else the trained one. */
export function smallClassifierId(): string {
  return manifestHas(FIXTURE_CLASSIFIER_ID) ? FIXTURE_CLASSIFIER_ID : CLASSIFIER_ID;
}
