#!/usr/bin/env node
/**
 * Perceived speed in the browser (issue 12.4; prints numbers, not a test). Assumes `npx vite build` was done.
 *
 *   node scripts/bench-perceived.mjs [--image ../shared/data/kermany-cxr-224/test/PNEUMONIA/person99_bacteria_473.jpeg]
 *                                    [--port 4176]
 *
 * One persistent Chromium profile (a temp folder), three visits of the built app served by `vite preview`:
 *   1. fresh profile: page load, then drop the X-ray → first classification shown (includes the default classifier's
 *      download, its sha256 check, the WASM session and the inference);
 *   2. warm profile, dropped as soon as the page is up (models cached; session creation not yet done);
 *   3. warm profile after the idle prewarm finished (store.prewarm: sessions created while the page is idle) →
 *      drop → result: what a returning user sees.
 * Prints one JSON line with every time in ms, plus the machine's load average (shared machine).
 * Needs the test build's store hook (`npm run build:test`). startPreview and measurePerceived are exported for
 * scripts/bench/browser-graphs.ts (`npm run bench:browser-graphs`), which adds these numbers to its table.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const log = (m) => process.stderr.write(`[perceived] ${m}\n`);

function parseArgs(argv) {
  const a = { image: path.resolve(REPO, '../shared/data/kermany-cxr-224/test/PNEUMONIA/person99_bacteria_473.jpeg'), port: 4176, dist: 'dist', compare: null, runs: 5, only: ['viewer', 'warm', 'segment', 'generate'], think: 0, afterPrewarm: false, legacy: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = () => argv[++i];
    if (k === '--image') a.image = path.resolve(v());
    else if (k === '--port') a.port = Number(v());
    else if (k === '--dist') a.dist = v();
    else if (k === '--runs') a.runs = Number(v());
    else if (k === '--only') a.only = v().split(',');
    else if (k === '--compare') a.compare = v();
    else if (k === '--compare-port') a.comparePort = Number(v());
    else if (k === '--think-ms') a.think = Number(v());
    else if (k === '--after-prewarm') a.afterPrewarm = true;
    else if (k === '--legacy') a.legacy = true;
    else throw new Error(`unknown argument ${k}`);
  }
  return a;
}

async function waitForHttp(url, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} did not answer`);
}

const state = (page) =>
  page.evaluate(() => {
    const s = window.cxrStudio.store.getState();
    const m = s.chosenModelId.classifier ? s.models[s.chosenModelId.classifier] : undefined;
    return { classifier: s.chosenModelId.classifier, status: m?.status, dtype: m?.report?.dtype, backend: m?.report?.backend, sessionCreateMs: m?.report?.sessionCreateMs };
  });

/** Debian's Chromium with the flags of playwright.config.ts, on a persistent profile folder. */
function launch(profile) {
  return chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1400, height: 900 },
    args: ['--enable-unsafe-webgpu', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
}

async function visit(context, base, image, { waitPrewarm }) {
  const page = await context.newPage();
  const t0 = performance.now();
  await page.goto(base + '/');
  await page.getByTestId('dropzone').waitFor({ state: 'visible' });
  await page.waitForFunction(() => !!window.cxrStudio?.store.getState().manifest, null, { timeout: 60_000 });
  const appLoad = performance.now() - t0;
  let prewarm = null;
  if (waitPrewarm) {
    const t = performance.now();
    await page.waitForFunction(() => {
      const s = window.cxrStudio.store.getState();
      // Every model the prewarm creates a session for (the classifier, then CLIP): a session still being created
      // when the X-ray is dropped shares the cores with the classification.
      return s.chosenModelId.classifier && s.models[s.chosenModelId.classifier]?.status === 'ready' && (!s.chosenModelId.clip || s.models[s.chosenModelId.clip]?.status === 'ready');
    }, null, { timeout: 120_000 });
    prewarm = performance.now() - t;
  }
  const t1 = performance.now();
  await page.getByTestId('file-input').setInputFiles(image);
  await page.getByTestId('classification-result').waitFor({ state: 'visible', timeout: 300_000 });
  const dropToResult = performance.now() - t1;
  const st = await state(page);
  await page.close();
  return { app_load_ms: Math.round(appLoad), prewarm_ms: prewarm == null ? null : Math.round(prewarm), drop_to_result_ms: Math.round(dropToResult), ...st };
}

/**
 * `vite preview` of `dist` (default dist/) on 127.0.0.1:port (COOP/COEP from vite.config.ts), up and answering.
 * Returns its base URL and a stop() that ends the server's process group.
 */
export async function startPreview(port, dist = 'dist') {
  if (!fs.existsSync(path.join(REPO, dist, 'index.html'))) throw new Error(`${dist}/ is missing: run \`npm run build:test\` (or vite build --mode test --outDir ${dist}) first`);
  const server = spawn('npx', ['vite', 'preview', '--host', '127.0.0.1', '--port', String(port), '--strictPort', '--outDir', dist], { cwd: REPO, detached: true, stdio: 'ignore' });
  const stop = () => {
    try {
      process.kill(-server.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  };
  const base = `http://127.0.0.1:${port}`;
  try {
    await waitForHttp(base, 60_000);
  } catch (e) {
    stop();
    throw e;
  }
  return { base, stop };
}

/**
 * The three visits on one fresh persistent profile (a temp folder, removed after): fresh profile, warm profile
 * dropped at once, warm profile after the idle prewarm. Times in ms; load averages at start and end.
 */
export async function measurePerceived(base, image) {
  if (!fs.existsSync(image)) throw new Error(`no such image ${image}`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-perceived-'));
  try {
    const context = await launch(profile);
    try {
      const load0 = os.loadavg();
      const fresh = await visit(context, base, image, { waitPrewarm: false });
      log(`fresh profile: ${JSON.stringify(fresh)}`);
      const warmNoWait = await visit(context, base, image, { waitPrewarm: false });
      log(`warm, dropped at once: ${JSON.stringify(warmNoWait)}`);
      const warm = await visit(context, base, image, { waitPrewarm: true });
      log(`warm, after idle prewarm: ${JSON.stringify(warm)}`);
      return { image: path.basename(image), fresh_profile: fresh, warm_dropped_at_once: warmNoWait, warm_after_prewarm: warm, load_average: [load0, os.loadavg()].map((l) => l.map((x) => Math.round(x * 100) / 100)), cores: os.cpus().length };
    } finally {
      await context.close();
    }
  } finally {
    fs.rmSync(profile, { recursive: true, force: true });
  }
}


// ---------------------------------------------------------------------------------------------------------------
// The user-facing first interactions (issue 21.1), each run `runs` times, min / median / max printed. With
// --compare DIST2 the same scenarios run on a second build (another preview server), run by run in alternation, so
// both see the same load of this shared machine.
// ---------------------------------------------------------------------------------------------------------------

const KERMANY_TEST = path.resolve(REPO, '../shared/data/kermany-cxr-224/test/PNEUMONIA');
const LUNG_DIR = path.resolve(REPO, '../shared/data/cxr-lung-masks');

/** min / median / max of numbers (null when none). */
export function summary(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  const median = v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { min: Math.round(v[0]), median: Math.round(median), max: Math.round(v[v.length - 1]), n: v.length };
}

/** A fresh profile folder and the browser on it; close() removes both. */
async function openProfile() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-perceived-'));
  const context = await launch(dir);
  return {
    context,
    async close() {
      await context.close().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function openPage(context, base) {
  const page = await context.newPage();
  page.on('pageerror', (e) => log(`page error: ${e.message}`));
  if (process.env.CXR_PERCEIVED_CONSOLE) page.on('console', (m) => /^MARK /.test(m.text()) && log(m.text()));
  await page.goto(base + '/', { timeout: 180_000 });
  await page.getByTestId('dropzone').waitFor({ state: 'visible', timeout: 180_000 });
  await page.waitForFunction(() => !!window.cxrStudio?.store.getState().manifest, null, { timeout: 180_000 });
  return page;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Where the time goes: every change of the segment state (model loading and its stage, encoding, decoding, masks)
 * and of the gallery's progress text, with performance.now(), kept in window.__timeline (read by timeline()).
 */
async function trackTimeline(page) {
  await page.evaluate(() => {
    const tl = (window.__timeline = []);
    let last = '';
    const label = (s) => {
      const seg = Object.values(s.sam.byImage)[0];
      const masks = seg?.history.present.some((l) => l.masks?.[l.selected]?.length) ? 'mask' : '';
      const models = Object.entries(s.models).map(([id, m]) => `${id}:${m.status}${m.status === 'loading' && m.message ? ` (${m.message})` : ''}`).join(',');
      // the Viewer: files being decoded, the current image's classification (pending OOD / heatmap) and zero-shot
      const it = s.images.find((i) => i.id === s.currentId);
      const c = it?.classification;
      const viewer = [s.busy ? `opening ${s.decoding?.name ?? ''}` : '', it ? 'image shown' : '', it?.classifying ? 'classifying' : '', c ? `classified${c.ood ? (c.ood.ood ? ' (OOD flagged)' : ' (in range)') : ''}${c.heatmap ? ' +heatmap' : ''}` : '', it?.zeroShotRunning ? 'zero-shot' : ''];
      return [s.sam.loading ? `sam loading: ${s.sam.loadMessage ?? ''}` : s.sam.info ? 'sam ready' : '', s.sam.prewarming ? 'prewarming' : '', seg?.encoding ? 'encoding' : seg?.key ? 'encoded' : '', seg?.decoding ? 'decoding' : '', masks, s.sd.progress?.text ?? '', ...viewer, models].filter(Boolean).join(' | ');
    };
    window.cxrStudio.store.subscribe((s) => {
      const l = label(s);
      if (l !== last) tl.push([Math.round(performance.now()), (last = l)]);
    });
  });
}

/** The timeline, in ms relative to the timer's start (the user's action). */
async function timeline(page) {
  return page.evaluate(() => (window.__timeline ?? []).map(([t, l]) => `${Math.round(t - (window.__perceived?.start ?? 0))} ${l}`));
}

/**
 * In-page clock: from the next `event` on window (capture phase) to the second animation frame after the store
 * first satisfies `readySrc` (a function's source, evaluated in the page): the result is on screen.
 */
async function armTimer(page, event, readySrc) {
  await page.evaluate(
    ({ event, readySrc }) => {
      const ready = new Function('s', `return (${readySrc})(s)`);
      const t = (window.__perceived = { start: null, ready: null, painted: null });
      window.addEventListener(event, () => (t.start ??= performance.now()), { capture: true, once: true });
      const unsub = window.cxrStudio.store.subscribe((s) => {
        if (t.start == null || t.ready != null || !ready(s)) return;
        t.ready = performance.now();
        requestAnimationFrame(() => requestAnimationFrame(() => (t.painted = performance.now())));
        unsub();
      });
    },
    { event, readySrc },
  );
}

async function readTimer(page, timeout) {
  try {
    const h = await page.waitForFunction(() => window.__perceived?.painted != null && window.__perceived, null, { timeout, polling: 50 });
    const t = await h.jsonValue();
    return t.painted - t.start;
  } catch (e) {
    // say what the page was doing (timer, alerts, segment / generate state) instead of a bare timeout
    const st = await page
      .evaluate(() => {
        const s = window.cxrStudio.store.getState();
        const seg = Object.values(s.sam.byImage).map((v) => ({ key: !!v.key, encoding: v.encoding, decoding: v.decoding, error: v.error, layers: v.history.present.map((l) => ({ box: l.box, points: l.points.length, masks: l.masks?.map((m) => m.length) })) }));
        return { timer: window.__perceived, alerts: s.alerts.map((a) => a.message), sam: { loading: s.sam.loading, loadError: s.sam.loadError, seg }, sd: { running: s.sd.running, error: s.sd.error, progress: s.sd.progress } };
      })
      .catch((x) => String(x));
    throw new Error(`${e.message}; page state: ${JSON.stringify(st)}`);
  }
}

function kermanyImages(n) {
  return fs.readdirSync(KERMANY_TEST).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, n).map((f) => path.join(KERMANY_TEST, f));
}

const classifierState = (page) =>
  page.evaluate(() => {
    const s = window.cxrStudio.store.getState();
    const m = s.models[s.chosenModelId.classifier];
    return { model: s.chosenModelId.classifier, dtype: m?.report?.dtype, backend: m?.report?.backend, sessionCreateMs: m?.report?.sessionCreateMs, inferenceMs: m?.report?.lastInferenceMs };
  });

/**
 * Drop → the classification painted, timed in the page: from the file input's change event to the second animation
 * frame after the current image has its classification (with its OOD verdict: they come together). CXR_PERCEIVED_TIMELINE=1
 * logs where the time went; CXR_PERCEIVED_CONSOLE=1 also the page's console lines that start with MARK (ad-hoc marks).
 */
async function dropAndWaitClassified(page, image) {
  if (process.env.CXR_PERCEIVED_TIMELINE) await trackTimeline(page);
  await armTimer(page, 'change', '(s) => { const it = s.images.find((i) => i.id === s.currentId); return !!it?.classification; }');
  await page.getByTestId('file-input').setInputFiles(image);
  await page.getByTestId('classification-result').waitFor({ state: 'visible', timeout: 300_000 });
  const ms = await readTimer(page, 300_000);
  if (process.env.CXR_PERCEIVED_TIMELINE) log(`timeline (ms from the drop):\n  ${(await timeline(page)).join('\n  ')}`);
  return ms;
}

function lungImages(n) {
  const boxes = JSON.parse(fs.readFileSync(path.join(LUNG_DIR, 'boxes.json'), 'utf8'));
  const files = fs.readdirSync(path.join(LUNG_DIR, 'images')).sort().filter((f) => boxes[f.replace(/\.[^.]+$/, '')]?.right_lung);
  return files.slice(0, n).map((f) => ({ file: path.join(LUNG_DIR, 'images', f), box: boxes[f.replace(/\.[^.]+$/, '')].right_lung }));
}

const openTab = (page, name) => page.getByRole('button', { name, exact: true }).click();

/**
 * --after-prewarm: wait until the tab's prewarm made the family's sessions ready (models[id] 'ready' and `extra`,
 * a store expression of `s`), at most PREWARM_WAIT_MS (a build without a prewarm waits that long and goes on):
 * a user who opened the tab and took that long to choose an image or read the form. Returns the ms waited.
 */
const PREWARM_WAIT_MS = 45_000;
async function waitPrewarm(page, family, extra) {
  const t = performance.now();
  await page
    .waitForFunction(
      ({ family, extra }) => {
        const s = window.cxrStudio.store.getState();
        const id = s.chosenModelId[family];
        return !!id && s.models[id]?.status === 'ready' && new Function('s', `return ${extra}`)(s);
      },
      { family, extra },
      { timeout: PREWARM_WAIT_MS, polling: 100 },
    )
    .catch(() => undefined);
  return Math.round(performance.now() - t);
}

/**
 * Each scenario: setup(profile) once per build (a warm-up visit that caches the models), then run(i) per run, a new
 * tab (or profile) each time. Times in ms. `think`: ms a user spends between opening a tab and acting (choosing a
 * file, reading the form); 0 acts at once.
 */
const SCENARIOS = {
  viewer: {
    what: 'Viewer: fresh profile, page up, drop → first classification painted (download included)',
    profilePerRun: true,
    async run({ base, think }, i) {
      const prof = await openProfile();
      try {
        const page = await openPage(prof.context, base);
        if (think) await sleep(think);
        const ms = await dropAndWaitClassified(page, kermanyImages(i + 1)[i]);
        return { ms, ...(await classifierState(page)) };
      } finally {
        await prof.close();
      }
    },
  },
  warm: {
    what: 'Viewer: warm profile, idle prewarm done, drop → classification painted',
    async setup({ context, base }) {
      const page = await openPage(context, base);
      await dropAndWaitClassified(page, kermanyImages(1)[0]);
      // the zero-shot model too, so both are cached and the idle prewarm creates both sessions
      await page.getByTestId('zero-shot-result').waitFor({ state: 'visible', timeout: 300_000 });
      await page.close();
    },
    async run({ context, base }, i) {
      const page = await openPage(context, base);
      await page.waitForFunction(() => {
        const s = window.cxrStudio.store.getState();
        const ok = (id) => !id || s.models[id]?.status === 'ready';
        // s.prewarming: the idle prewarm's warm-up runs still going (builds without it: undefined)
        return !!s.chosenModelId.classifier && ok(s.chosenModelId.classifier) && ok(s.chosenModelId.clip) && !s.prewarming;
      }, null, { timeout: 300_000 });
      const ms = await dropAndWaitClassified(page, kermanyImages(i + 2)[i + 1]);
      const st = await classifierState(page);
      await page.close();
      return { ms, ...st };
    },
  },
  segment: {
    what: 'Segment: model cached, adult X-ray opened, box drawn at once → mouse-up to mask painted',
    async setup({ context, base }) {
      const page = await openPage(context, base);
      await openTab(page, 'Segment');
      await page.getByTestId('file-input').setInputFiles(lungImages(1)[0].file);
      await page.waitForFunction(() => Object.values(window.cxrStudio.store.getState().sam.byImage).some((v) => v.key && !v.encoding), null, { timeout: 300_000 });
      await page.close();
    },
    async run(env, i) {
      const { context, base, think } = env;
      const img = lungImages(i + 2)[i + 1]; // a new image each run: no embedding from the cache
      const page = await openPage(context, base);
      await trackTimeline(page);
      await openTab(page, 'Segment');
      if (think) await sleep(think);
      if (env.afterPrewarm) env.rowExtra = { waitedMs: await waitPrewarm(page, 'sam', '!s.sam.prewarming') };
      const t0 = performance.now();
      await page.getByTestId('file-input').setInputFiles(img.file);
      const ov = page.getByTestId('segment-overlay');
      await ov.waitFor({ state: 'visible', timeout: 120_000 });
      const openMs = performance.now() - t0;
      const [w, h] = await page.evaluate(() => {
        const s = window.cxrStudio.store.getState();
        const it = s.images.find((im) => im.id === s.currentId);
        return [it.raster.width, it.raster.height];
      });
      await armTimer(page, 'pointerup', '(s) => Object.values(s.sam.byImage).some((v) => v.history.present.some((l) => l.masks && l.masks[l.selected] && l.masks[l.selected].length > 0))');
      // the canvas is sized after it appears (useFitWidth): drag only once its box has stopped moving
      let bb = await ov.boundingBox();
      for (let same = 0; same < 3; ) {
        await sleep(100);
        const nb = await ov.boundingBox();
        same = JSON.stringify(nb) === JSON.stringify(bb) ? same + 1 : 0;
        bb = nb;
      }
      await page.evaluate(() => window.addEventListener('pointerdown', (e) => (window.__perceived.downOn = e.target?.dataset?.testid), { capture: true, once: true }));
      const at = (x, y) => [bb.x + (x * bb.width) / w, bb.y + (y * bb.height) / h];
      const [x0, y0, x1, y1] = img.box;
      await page.mouse.move(...at(x0, y0));
      await page.mouse.down();
      await page.mouse.move(...at((x0 + x1) / 2, (y0 + y1) / 2), { steps: 4 });
      await page.mouse.move(...at(x1, y1), { steps: 4 });
      await page.mouse.up();
      const downOn = await page.evaluate(() => window.__perceived.downOn);
      if (downOn !== 'segment-overlay') throw new Error(`the drag started on ${downOn}, not on the segment canvas`);
      const ms = await readTimer(page, 300_000);
      const st = await page.evaluate(() => {
        const s = window.cxrStudio.store.getState();
        const v = Object.values(s.sam.byImage).find((x) => x.key);
        const r = s.sam.info?.report;
        return { size: v && `${v.width}x${v.height}`, from: v?.from, encodeMs: v?.encodeMs && Math.round(v.encodeMs), decodeMs: v?.decodeMs && Math.round(v.decodeMs), dtype: r?.dtype, backend: r?.backend, sessionCreateMs: r?.sessionCreateMs };
      });
      if (process.env.CXR_PERCEIVED_TIMELINE) log(`timeline (ms from mouse-up):\n  ${(await timeline(page)).join('\n  ')}`);
      await page.close();
      return { ms, openMs: Math.round(openMs), ...st };
    },
  },
  generate: {
    what: 'Generate: model cached, default form, Generate clicked → first image painted',
    async setup({ context, base }) {
      const page = await openPage(context, base);
      await openTab(page, 'Generate');
      await page.waitForFunction(() => window.cxrStudio.store.getState().sd.historyLoaded, null, { timeout: 120_000 });
      await page.getByTestId('gen-run').click();
      await page.waitForFunction(() => { const s = window.cxrStudio.store.getState().sd; return !s.running && s.runs.length > 0; }, null, { timeout: 600_000, polling: 200 });
      await page.close();
    },
    async run(env) {
      const { context, base, think } = env;
      const page = await openPage(context, base);
      await trackTimeline(page);
      await openTab(page, 'Generate');
      await page.waitForFunction(() => window.cxrStudio.store.getState().sd.historyLoaded, null, { timeout: 120_000 });
      if (think) await sleep(think);
      if (env.afterPrewarm) env.rowExtra = { waitedMs: await waitPrewarm(page, 'sd', 'true') };
      await page.evaluate(() => (window.__perceivedOld = window.cxrStudio.store.getState().sd.runs.map((r) => r.id)));
      await armTimer(page, 'click', '(s) => s.sd.runs.some((r) => r.images.length > 0 && !(window.__perceivedOld || []).includes(r.id))');
      await page.getByTestId('gen-run').click();
      const ms = await readTimer(page, 600_000);
      await page.waitForFunction(() => !window.cxrStudio.store.getState().sd.running, null, { timeout: 600_000, polling: 200 });
      if (process.env.CXR_PERCEIVED_TIMELINE) log(`timeline (ms from the click):\n  ${(await timeline(page)).join('\n  ')}`);
      const st = await page.evaluate(() => {
        const s = window.cxrStudio.store.getState().sd;
        const run = s.runs[0];
        const im = run.images[0];
        return { model: run.model.id, dtype: run.model.dtype, backend: run.model.backend, steps: run.steps, sides: run.sides.join('+'), seeds: run.seeds.length, firstImageMs: im?.totalMs, size: im && `${im.width}x${im.height}`, sessionCreateMs: s.report?.sessionCreateMs };
      });
      await page.close();
      return { ms, ...st };
    },
  },
};

/**
 * Every chosen scenario `runs` times on each build (`targets`: [{ label, base }]), alternating builds run by run.
 * Returns per scenario and build the runs and their min / median / max (ms), with the load averages.
 */
export async function measureFirstInteractions(targets, { runs = 5, only = Object.keys(SCENARIOS), think = 0, afterPrewarm = false } = {}) {
  const result = { cores: os.cpus().length, runs, think_ms: think, after_prewarm: afterPrewarm, scenarios: {} };
  for (const k of only) {
    const sc = SCENARIOS[k];
    if (!sc) throw new Error(`unknown scenario ${k} (${Object.keys(SCENARIOS).join(', ')})`);
    log(`${sc.what} ×${runs} on ${targets.map((t) => t.label).join(', ')}`);
    const load0 = os.loadavg()[0];
    const envs = [];
    try {
      for (const t of targets) {
        const env = { ...t, think, afterPrewarm, rows: [] };
        if (!sc.profilePerRun) {
          env.profile = await openProfile();
          env.context = env.profile.context;
          await sc.setup(env);
        }
        envs.push(env);
      }
      for (let i = 0; i < runs; i++) {
        for (const env of envs) {
          const l = os.loadavg()[0];
          env.rowExtra = {};
          let r;
          try {
            r = { ...(await sc.run(env, i)), ...env.rowExtra };
          } catch (e) {
            // one run that fails (a timeout on this shared machine) is reported as such; the others go on
            r = { ms: null, failed: String(e.message ?? e).split('\n')[0].slice(0, 300), ...env.rowExtra };
            for (const p of env.context?.pages() ?? []) await p.close().catch(() => undefined);
          }
          if (r.ms != null) r.ms = Math.round(r.ms);
          r.load1 = Math.round(l * 10) / 10;
          env.rows.push(r);
          log(`${k} ${env.label} #${i + 1}: ${r.ms} ms ${JSON.stringify(r)}`);
        }
      }
    } finally {
      for (const env of envs) await env.profile?.close();
    }
    result.scenarios[k] = { what: sc.what, load1: [Math.round(load0 * 10) / 10, Math.round(os.loadavg()[0] * 10) / 10], builds: Object.fromEntries(envs.map((e) => [e.label, { ms: summary(e.rows.map((r) => r.ms)), runs: e.rows }])) };
  }
  return result;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const servers = [await startPreview(a.port, a.dist)];
  const stopAll = () => servers.forEach((s) => s.stop());
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => (stopAll(), process.exit(130)));
  try {
    if (a.legacy) {
      process.stdout.write(JSON.stringify(await measurePerceived(servers[0].base, a.image)) + '\n');
      return;
    }
    const targets = [{ label: a.dist, base: servers[0].base }];
    if (a.compare) {
      servers.push(await startPreview(a.comparePort ?? a.port + 1, a.compare));
      targets.unshift({ label: a.compare, base: servers[1].base });
    }
    const r = await measureFirstInteractions(targets, { runs: a.runs, only: a.only, think: a.think, afterPrewarm: a.afterPrewarm });
    const labels = targets.map((t) => t.label);
    process.stdout.write(`\nFirst interactions (${r.runs} runs each, ms, min / median / max; think time ${r.think_ms} ms${r.after_prewarm ? `, then up to ${PREWARM_WAIT_MS / 1000} s for the tab's prewarm` : ''}; ${r.cores} cores):\n`);
    process.stdout.write(`| interaction | ${labels.join(' | ')} | load (1 min) |\n| --- |${labels.map(() => ' ---: |').join('')} ---: |\n`);
    for (const s of Object.values(r.scenarios)) {
      const cell = (l) => {
      const b = s.builds[l];
      const failed = b?.runs.filter((r) => r.failed).length;
      return `${b?.ms ? `${b.ms.min} / ${b.ms.median} / ${b.ms.max}` : '–'}${failed ? ` (${failed} failed)` : ''}`;
    };
      process.stdout.write(`| ${s.what} | ${labels.map(cell).join(' | ')} | ${s.load1.join('–')} |\n`);
    }
    process.stdout.write(JSON.stringify(r) + '\n');
  } finally {
    stopAll();
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
