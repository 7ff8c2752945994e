/**
 * How long WebCrypto takes to SHA-256 a model file in Chromium: the cost of re-hashing every model file read from
 * the model cache before a session is created (app/lib/models/verified-read.ts). Prints ms per size (median of 7
 * after one warm-up) and MB/s, on the page's thread and in a worker (where the model workers hash).
 *
 *   node scripts/bench-sha256-browser.mjs [--mb 40]
 *
 * Serves a blank page on 127.0.0.1 (a secure context, as crypto.subtle needs) and launches Debian's Chromium.
 */
import http from 'node:http';
import { chromium } from 'playwright-core';

const mbArg = process.argv.indexOf('--mb');
const sizes = mbArg > 0 ? [Number(process.argv[mbArg + 1])] : [4, 40, 160];

const server = http.createServer((req, res) => {
  res.setHeader('Content-Type', 'text/html');
  res.end('<!doctype html><title>sha256 bench</title>');
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  await page.goto(url);
  const version = browser.version();
  console.log(`Chromium ${version}, ${(await page.evaluate(() => navigator.hardwareConcurrency))} logical cores`);
  for (const mb of sizes) {
    const r = await page.evaluate(async (mb) => {
      const bytes = new Uint8Array(mb * 2 ** 20);
      for (let o = 0; o < bytes.length; o += 65536) crypto.getRandomValues(bytes.subarray(o, o + 65536));
      const time = async (fn) => {
        await fn();
        const t = [];
        for (let i = 0; i < 7; i++) {
          const t0 = performance.now();
          await fn();
          t.push(performance.now() - t0);
        }
        t.sort((a, b) => a - b);
        return { median: t[3], min: t[0] };
      };
      const page = await time(() => crypto.subtle.digest('SHA-256', bytes));
      const src = `onmessage = async (e) => { const t0 = performance.now(); await crypto.subtle.digest('SHA-256', e.data); postMessage(performance.now() - t0); };`;
      const w = new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' })));
      const inWorker = () => new Promise((res) => { w.onmessage = (e) => res(e.data); w.postMessage(bytes); });
      await inWorker();
      const wt = [];
      for (let i = 0; i < 7; i++) wt.push(await inWorker());
      wt.sort((a, b) => a - b);
      w.terminate();
      return { page, worker: { median: wt[3], min: wt[0] } };
    }, mb);
    const rate = (ms) => ((mb / ms) * 1000).toFixed(0);
    console.log(`sha256 ${mb} MB: page ${r.page.median.toFixed(1)} ms median (min ${r.page.min.toFixed(1)}, ${rate(r.page.median)} MB/s); worker ${r.worker.median.toFixed(1)} ms median (min ${r.worker.min.toFixed(1)}, ${rate(r.worker.median)} MB/s)`);
  }
} finally {
  await browser.close();
  server.close();
}
