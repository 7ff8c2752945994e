/**
 * Batch user-timing spans (app/lib/batch/timing.ts): what scripts/bench-browser-batch.mjs and `npm run label` print
 * as the per-phase profile. Real performance.measure entries of Node's User Timing, read back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { batchSpanSummary, clearBatchSpans, timed, timedSync } from '../../../app/lib/batch/timing';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('batch timing spans', () => {
  afterEach(() => clearBatchSpans());

  it('records each phase with its count, summed and largest duration and summed numeric details', async () => {
    await timed('classifier', async () => (await sleep(30), { ortMs: 12 }), (v) => ({ ortMs: v.ortMs, images: 16, note: 'ignored' }));
    await timed('classifier', async () => (await sleep(10), { ortMs: 3 }), (v) => ({ ortMs: v.ortMs, images: 4 }));
    const x = timedSync('rows', () => 41 + 1);
    expect(x).toBe(42);
    const s = batchSpanSummary();
    expect(s.classifier.count).toBe(2);
    expect(s.classifier.totalMs).toBeGreaterThanOrEqual(38); // timers may fire a little early, never 10 ms early
    expect(s.classifier.maxMs).toBeGreaterThanOrEqual(28);
    expect(s.classifier.maxMs).toBeLessThanOrEqual(s.classifier.totalMs);
    expect(s.classifier.detail).toEqual({ ortMs: 15, images: 20 });
    expect(s.rows.count).toBe(1);
  });

  it('passes a failure through unrecorded and clears only its own entries', async () => {
    await expect(timed('decode', async () => Promise.reject(new Error('bad png')))).rejects.toThrow('bad png');
    expect(batchSpanSummary().decode).toBeUndefined();
    performance.mark('other-mark');
    performance.measure('other:span', 'other-mark');
    await timed('journal', async () => undefined);
    clearBatchSpans();
    expect(batchSpanSummary()).toEqual({});
    expect(performance.getEntriesByName('other:span')).toHaveLength(1);
    performance.clearMeasures('other:span');
    performance.clearMarks('other-mark');
  });
});
