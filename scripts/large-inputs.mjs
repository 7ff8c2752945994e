#!/usr/bin/env node
/**
 * Large-input benchmark (issue 8 item 7; prints numbers, not a test): generates, in a temp folder (never the repo),
 *
 *   dicom60   a 62.9 MB multi-frame DICOM (512x512, 16-bit, 120 frames; written by pydicom in .venv)
 *   png10k    a 10000x10000 8-bit greyscale PNG
 *   folder3k  a folder of 3,000 PNGs (256x256) in NORMAL/ and PNEUMONIA/
 *   zip1g     a 1 GiB zip (1,024 stored 1 MiB PNGs)
 *
 * and feeds each to the production build in Debian's Chromium (single images through the file picker, the folder
 * and the zip through batch mode, which runs for at most --batch-seconds and is then cancelled), sampling memory:
 *
 *   js_heap_mb    peak performance.memory.usedJSHeapSize of the page (main thread)
 *   uasm_mb       peak performance.measureUserAgentSpecificMemory() (page + its workers; cross-origin isolated only)
 *   rss_total_mb  peak summed VmRSS of the Chromium process tree (shared pages counted in each process)
 *   rss_max_mb    peak VmRSS of the largest single Chromium process (the renderer, in practice)
 *
 * Usage: npx vite build && node scripts/large-inputs.mjs [--only dicom60,png10k,...] [--port 4203] [--batch-seconds 60]
 *        [--keep] (keep the generated inputs in $TMPDIR/cxr-large-inputs)
 * Prints one JSON object per input and a summary table.
 *
 * `node scripts/large-inputs.mjs --adversarial [--repo DIR] [--only 01,03]` instead runs the cases of
 * ../shared/data/adversarial through `npm run convert` / `npm run label` and prints their time, peak RSS and
 * outcome (scripts/large-inputs-adversarial.mjs).
 */
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from '@playwright/test';

if (process.argv.includes('--adversarial')) {
  // The adversarial cases of ../shared through the CLIs (issue 19): see scripts/large-inputs-adversarial.mjs.
  await import('./large-inputs-adversarial.mjs');
  process.exit(0);
}

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PY = path.join(REPO, '.venv/bin/python');
const args = process.argv.slice(2);
const opt = (k, d) => {
  const i = args.indexOf(k);
  return i >= 0 ? args[i + 1] : d;
};
const ONLY = opt('--only', 'dicom60,png10k,folder3k,zip1g').split(',');
const PORT = Number(opt('--port', process.env.CXR_E2E_PORT ?? 4203));
const BATCH_SECONDS = Number(opt('--batch-seconds', 60));
const CLASSIFIER = opt('--classifier', 'tiny-vit-classifier');
const DIR = path.join(os.tmpdir(), 'cxr-large-inputs');
fs.mkdirSync(DIR, { recursive: true });

function py(code) {
  execFileSync(PY, ['-c', code, DIR], { stdio: ['ignore', 'inherit', 'inherit'] });
}

const GEN = {
  dicom60: () => py(`
import sys, numpy as np, pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
d = sys.argv[1]
meta = FileMetaDataset(); meta.TransferSyntaxUID = ExplicitVRLittleEndian
meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"; meta.MediaStorageSOPInstanceUID = generate_uid()
ds = Dataset(); ds.file_meta = meta; ds.PatientName = "QA^SYNTHETIC"; ds.Modality = "DX"
ds.SOPClassUID = meta.MediaStorageSOPClassUID; ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
ds.Rows = ds.Columns = 512; ds.NumberOfFrames = 120; ds.SamplesPerPixel = 1; ds.PhotometricInterpretation = "MONOCHROME2"
ds.BitsAllocated = 16; ds.BitsStored = 12; ds.HighBit = 11; ds.PixelRepresentation = 0
yy, xx = np.mgrid[0:512, 0:512]
frames = np.stack([((xx + yy + 7 * k) % 4096) for k in range(120)]).astype(np.uint16)
ds.PixelData = frames.tobytes()
ds.save_as(d + "/dicom60.dcm", enforce_file_format=True)
`),
  png10k: () => py(`
import sys, numpy as np
from PIL import Image
y = np.arange(10000, dtype=np.uint32)
a = ((y[:, None] // 7 + y[None, :] // 5) % 256).astype(np.uint8)
Image.fromarray(a, "L").save(sys.argv[1] + "/png10k.png", compress_level=1)
`),
  folder3k: () => py(`
import sys, os, io, numpy as np
from PIL import Image
d = sys.argv[1] + "/folder3k"
rng = np.random.default_rng(0)
for label in ("NORMAL", "PNEUMONIA"):
    os.makedirs(d + "/" + label, exist_ok=True)
base = [Image.fromarray(rng.integers(0, 256, (256, 256), dtype=np.uint8), "L") for _ in range(8)]
blobs = []
for im in base:
    b = io.BytesIO(); im.save(b, "PNG"); blobs.append(b.getvalue())
for i in range(3000):
    open(f"{d}/{('NORMAL', 'PNEUMONIA')[i % 2]}/img{i:05d}.png", "wb").write(blobs[i % 8])
`),
  zip1g: () => py(`
import sys, io, zipfile, numpy as np
from PIL import Image
rng = np.random.default_rng(0)
b = io.BytesIO(); Image.fromarray(rng.integers(0, 256, (1024, 1024), dtype=np.uint8), "L").save(b, "PNG", compress_level=0)
png = b.getvalue()
with zipfile.ZipFile(sys.argv[1] + "/zip1g.zip", "w", zipfile.ZIP_STORED, allowZip64=True) as z:
    for i in range(1024):
        z.writestr(f"{('NORMAL', 'PNEUMONIA')[i % 2]}/img{i:04d}.png", png)
`),
};

const INPUT = { dicom60: 'dicom60.dcm', png10k: 'png10k.png', folder3k: 'folder3k', zip1g: 'zip1g.zip' };

function duBytes(p) {
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((s, f) => s + duBytes(path.join(p, f)), 0);
}

/** VmRSS (kB) of the Chromium processes (command name chrom*) among the descendants of rootPid. */
function treeRss(rootPid) {
  const kids = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      /* exited */
    }
  }
  let total = 0;
  let max = 0;
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const status = fs.readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /VmRSS:\s+(\d+)/.exec(status);
      const kb = m && /^Name:\s+chrom/m.test(status) ? Number(m[1]) : 0;
      total += kb;
      max = Math.max(max, kb);
    } catch {
      /* exited */
    }
    stack.push(...(kids.get(p) ?? []));
  }
  return { total, max };
}

async function waitForServer(url, ms = 60_000) {
  const t0 = Date.now();
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not yet */
    }
    if (Date.now() - t0 > ms) throw new Error(`preview server did not start at ${url}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function runCase(browser, name, file) {
  const context = await browser.newContext({ serviceWorkers: 'block', viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  let crashed = false;
  page.on('crash', () => (crashed = true));
  await page.goto(`http://127.0.0.1:${PORT}/`);
  await page.getByTestId('dropzone').waitFor();
  await page.getByTestId('backend-select').selectOption('wasm');
  await page.getByTestId('classifier-select').selectOption(CLASSIFIER).catch(() => undefined);
  const peak = { js_heap_mb: 0, uasm_mb: 0, rss_total_mb: 0, rss_max_mb: 0 };
  const pid = process.pid; // Playwright starts Chromium as a child of this process
  const sampler = setInterval(async () => {
    if (pid) {
      const r = treeRss(pid);
      peak.rss_total_mb = Math.max(peak.rss_total_mb, r.total / 1024);
      peak.rss_max_mb = Math.max(peak.rss_max_mb, r.max / 1024);
    }
    const h = await page.evaluate(() => performance.memory?.usedJSHeapSize ?? 0).catch(() => 0);
    peak.js_heap_mb = Math.max(peak.js_heap_mb, h / 2 ** 20);
  }, 250);
  let uasmRunning = true;
  const uasmLoop = (async () => {
    while (uasmRunning) {
      const b = await page
        .evaluate(() => (globalThis.crossOriginIsolated && performance.measureUserAgentSpecificMemory ? performance.measureUserAgentSpecificMemory().then((m) => m.bytes) : 0))
        .catch(() => 0);
      peak.uasm_mb = Math.max(peak.uasm_mb, b / 2 ** 20);
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
  const t0 = Date.now();
  let outcome = '';
  try {
    if (name === 'dicom60' || name === 'png10k') {
      await page.getByTestId('file-input').setInputFiles(file);
      const ok = page.getByTestId('classification-result');
      const alert = page.getByTestId('alerts');
      await Promise.race([ok.waitFor({ timeout: 180_000 }), alert.waitFor({ timeout: 180_000 })]);
      outcome = (await ok.isVisible()) ? `classified: ${(await ok.innerText()).replace(/\s+/g, ' ').slice(0, 80)}` : `alert: ${(await alert.innerText()).slice(0, 160)}`;
      const notes = await page.getByTestId('decode-notes').innerText().catch(() => '');
      if (notes) outcome += ` | ${notes}`;
    } else {
      await page.getByRole('button', { name: 'Batch' }).click();
      const input = name === 'folder3k' ? page.getByTestId('batch-folder-input') : page.getByTestId('batch-file-input');
      await input.setInputFiles(file);
      const progress = page.getByTestId('batch-progress-text');
      const deadline = Date.now() + BATCH_SECONDS * 1000;
      let text = '';
      while (Date.now() < deadline && !crashed) {
        text = await progress.innerText({ timeout: 1000 }).catch(() => text);
        if (/finished/.test(text)) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      if (!/finished/.test(text) && !crashed) {
        await page.getByTestId('batch-cancel').click({ timeout: 5000 }).catch(() => undefined);
        await page.getByText(/paused/).first().waitFor({ timeout: 60_000 }).catch(() => undefined);
        text = await progress.innerText().catch(() => text);
        outcome = `cancelled after ${BATCH_SECONDS} s: ${text}`;
      } else outcome = text;
      const alerts = await page.getByTestId('alerts').innerText().catch(() => '');
      if (alerts) outcome += ` | alerts: ${alerts.slice(0, 200)}`;
    }
  } catch (e) {
    outcome = `error: ${e.message.split('\n')[0]}`;
  }
  if (crashed) outcome = `TAB CRASHED (${outcome})`;
  uasmRunning = false;
  await Promise.race([uasmLoop, new Promise((r) => setTimeout(r, 3000))]);
  clearInterval(sampler);
  const seconds = (Date.now() - t0) / 1000;
  await context.close().catch(() => undefined);
  const round = (x) => Math.round(x);
  return { input: name, bytes: duBytes(file), seconds: Math.round(seconds * 10) / 10, js_heap_mb: round(peak.js_heap_mb), uasm_mb: round(peak.uasm_mb), rss_total_mb: round(peak.rss_total_mb), rss_max_mb: round(peak.rss_max_mb), outcome, page_errors: pageErrors.slice(0, 3) };
}

async function main() {
  for (const name of ONLY) {
    const p = path.join(DIR, INPUT[name]);
    if (!fs.existsSync(p)) {
      process.stderr.write(`generating ${name} in ${DIR} ...\n`);
      GEN[name]();
    }
  }
  if (!fs.existsSync(path.join(REPO, 'dist/index.html'))) throw new Error('build first: npx vite build');
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(PORT), '--strictPort'], { cwd: REPO, stdio: 'ignore', detached: true });
  try {
    await waitForServer(`http://127.0.0.1:${PORT}/`);
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--enable-precise-memory-info'],
    });
    const results = [];
    for (const name of ONLY) {
      const r = await runCase(browser, name, path.join(DIR, INPUT[name]));
      results.push(r);
      process.stdout.write(JSON.stringify(r) + '\n');
    }
    await browser.close();
    process.stdout.write('\n| input | size | peak JS heap | peak UA-specific memory | peak RSS (all Chromium) | peak RSS (largest process) | s | outcome |\n|---|---|---|---|---|---|---|---|\n');
    for (const r of results) {
      process.stdout.write(`| ${r.input} | ${(r.bytes / 2 ** 20).toFixed(0)} MiB | ${r.js_heap_mb} MB | ${r.uasm_mb || '—'} MB | ${r.rss_total_mb} MB | ${r.rss_max_mb} MB | ${r.seconds} | ${r.outcome.replace(/\|/g, '/')} |\n`);
    }
  } finally {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      /* already gone */
    }
    if (!args.includes('--keep')) fs.rmSync(DIR, { recursive: true, force: true });
  }
}

main().catch((e) => {
  process.stderr.write(`large-inputs: ${e.stack ?? e}\n`);
  process.exit(1);
});
