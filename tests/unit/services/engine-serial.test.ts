/**
 * Issue 18.4: the classifier and CLIP engines run one session.run at a time per session, and releasing a session
 * waits for the runs in flight. Real engines and real ONNX sessions (the committed tiny fixtures, ORT's Node build);
 * the host only records when each run starts and ends and when a session is released, so the order can be checked.
 * Without the queue (app/lib/runtime/run-queue.ts) the concurrent calls below overlap and the release lands mid-run.
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { findModel, parseManifest } from '../../../app/lib/models/manifest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import type { ModelRequest } from '../../../app/lib/runtime/outcome';
import type { Ort, OrtHost, Session } from '../../../app/lib/runtime/sessions';
import { nodeOrtHost } from '../../../app/platform/node/ort';
import { inProcessEngines } from '../../../app/services/engines';
import { lacks, REPO_ROOT } from '../helpers/shared';

const MODELS = path.join(REPO_ROOT, 'public/models');
const manifestFile = path.join(MODELS, 'manifest.json');
const manifest = fs.existsSync(manifestFile) ? parseManifest(JSON.parse(fs.readFileSync(manifestFile, 'utf8'))) : null;
const tinyVit = manifest && findModel(manifest, 'tiny-vit-classifier');
const tinyClip = manifest && findModel(manifest, 'tiny-biomedclip');
const gray = (v: number) => ({ width: 48, height: 48, data: new Uint8ClampedArray(48 * 48 * 4).map((_, i) => (i % 4 === 3 ? 255 : (v + i) % 256)) });
const request = (entry: ModelEntry): ModelRequest => ({ entry, override: 'wasm', source: { kind: 'app' } });

/** Node's ORT host whose sessions log run start/end and release (the runs themselves are ORT's, untouched). */
function recordingHost(events: string[]): { host: OrtHost; maxConcurrent: () => number } {
  const base = nodeOrtHost({ modelsDir: MODELS, threads: 1 });
  let inFlight = 0;
  let max = 0;
  let n = 0;
  const wrap = (s: Session): Session => {
    const id = ++n;
    return new Proxy(s, {
      get(t, p) {
        if (p === 'run') {
          return async (...a: Parameters<Session['run']>) => {
            inFlight++;
            max = Math.max(max, inFlight);
            events.push(`run-start ${id}`);
            try {
              return await t.run(...a);
            } finally {
              inFlight--;
              events.push(`run-end ${id}`);
            }
          };
        }
        if (p === 'release') return async () => {
          events.push(`release ${id}`);
          return t.release();
        };
        const v = Reflect.get(t, p);
        return typeof v === 'function' ? v.bind(t) : v;
      },
    });
  };
  const host: OrtHost = {
    ...base,
    async ort() {
      const ort = await base.ort();
      return { ...ort, InferenceSession: { create: async (...a: unknown[]) => wrap(await (ort.InferenceSession.create as (...x: unknown[]) => Promise<Session>)(...a)) } } as unknown as Ort;
    },
  };
  return { host, maxConcurrent: () => max };
}

/** Every run started before `release i` has ended before it. */
function expectReleaseAfterRuns(events: string[]) {
  for (const [k, e] of events.entries()) {
    if (!e.startsWith('release')) continue;
    const id = e.split(' ')[1];
    const before = events.slice(0, k);
    expect(before.filter((x) => x === `run-start ${id}`).length, `runs of session ${id} before its release`).toBe(before.filter((x) => x === `run-end ${id}`).length);
    expect(events.slice(k + 1).some((x) => x === `run-start ${id}`), `a run on session ${id} after its release`).toBe(false);
  }
}

describe.skipIf(lacks(!!tinyVit && !!tinyClip, 'tiny-vit-classifier and tiny-biomedclip in public/models'))('engines serialise runs per session', () => {
  it('classifier: concurrent classify and occlusion calls never overlap; release waits for the runs in flight', async () => {
    const events: string[] = [];
    const { host, maxConcurrent } = recordingHost(events);
    const { classifier } = inProcessEngines(host);
    const req = request(tinyVit!);
    expect((await classifier.load(req)).ok).toBe(true);
    const calls = [
      classifier.classify(req, [gray(1), gray(2)], { heatmap: true }),
      classifier.occlusion(req, gray(3), { window: 16, stride: 16 }),
      classifier.classify(req, [gray(4)], { heatmap: false }),
      classifier.classify(req, [gray(5)], { heatmap: false }),
    ];
    // Let the calls queue their runs, then release while they are in flight.
    while (!events.some((e) => e.startsWith('run-start'))) await new Promise((r) => setTimeout(r, 1));
    const released = classifier.release(tinyVit!.id);
    const outs = await Promise.all(calls);
    await released;
    expect(maxConcurrent()).toBe(1);
    expect(events.some((e) => e.startsWith('release'))).toBe(true);
    expectReleaseAfterRuns(events);
    // The calls whose runs were queued before the release completed; none failed with a half-freed session.
    for (const o of outs) if (!o.ok) expect(o.message).toMatch(/released/);
    expect(outs[0].ok).toBe(true);
  });

  it('CLIP: concurrent zero-shot calls (image and text towers) never overlap per session; release waits', async () => {
    const events: string[] = [];
    const { host, maxConcurrent } = recordingHost(events);
    const { clip } = inProcessEngines(host);
    const req = request(tinyClip!);
    expect((await clip.load(req)).ok).toBe(true);
    const sets = (k: number) => [{ label: 'A', prompts: [`a chest x-ray ${k}`] }, { label: 'B', prompts: [`a normal chest x-ray ${k}`] }];
    const calls = [1, 2, 3, 4].map((k) => clip.zeroShot(req, [gray(k), gray(k + 10)], sets(k)));
    while (!events.some((e) => e.startsWith('run-start'))) await new Promise((r) => setTimeout(r, 1));
    const released = clip.release(tinyClip!.id);
    const outs = await Promise.all(calls);
    await released;
    // Two sessions (image, text): at most one run on each at a time.
    expect(maxConcurrent()).toBeLessThanOrEqual(2);
    for (const id of new Set(events.map((e) => e.split(' ')[1]))) {
      let live = 0;
      for (const e of events.filter((x) => x.endsWith(` ${id}`))) {
        live += e.startsWith('run-start') ? 1 : e.startsWith('run-end') ? -1 : 0;
        expect(live).toBeLessThanOrEqual(1);
      }
    }
    expectReleaseAfterRuns(events);
    expect(outs[0].ok).toBe(true);
  });
});
