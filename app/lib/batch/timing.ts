/**
 * User-timing spans of a batch run: one `performance.measure('batch:<phase>', { start, end, detail })` per phase and
 * chunk (W3C User Timing Level 3), so that a profile of the app (scripts/bench-browser-batch.mjs reads them from the
 * page) or of `npm run label` (its --profile summary) says where each chunk's time went: decode, each model's call
 * (its ORT run time in `detail`), the journal write, the rows' state update. A measure costs microseconds against
 * chunks of tens of milliseconds; without User Timing (an old runtime) the work simply runs untimed.
 */

/** A span's name prefix; `clearBatchSpans` removes only these. */
export const BATCH_SPAN = 'batch:';

const perf = (): Performance | undefined => (typeof performance !== 'undefined' && typeof performance.measure === 'function' ? performance : undefined);

function record(phase: string, start: number, detail?: Record<string, unknown>): void {
  try {
    perf()?.measure(BATCH_SPAN + phase, { start, end: performance.now(), detail });
  } catch {
    // a measure that cannot be recorded must never fail the batch
  }
}

/** Run `fn`, recording its wall time as the span `batch:<phase>`; `detail(value)` adds facts (e.g. ORT run ms). */
export async function timed<T>(phase: string, fn: () => Promise<T>, detail?: (value: T) => Record<string, unknown>): Promise<T> {
  if (!perf()) return fn();
  const start = performance.now();
  const value = await fn();
  record(phase, start, detail?.(value));
  return value;
}

/** The synchronous form of `timed` (a state update, a derivation on the main thread). */
export function timedSync<T>(phase: string, fn: () => T): T {
  if (!perf()) return fn();
  const start = performance.now();
  const value = fn();
  record(phase, start);
  return value;
}

/** Per phase: how many spans, their summed and largest duration (ms), and the summed numeric `detail` fields. */
export interface BatchSpanSummary {
  count: number;
  totalMs: number;
  maxMs: number;
  detail: Record<string, number>;
}

/** Summary of the batch spans recorded so far (see BatchSpanSummary), by phase name without the prefix. */
export function batchSpanSummary(): Record<string, BatchSpanSummary> {
  const out: Record<string, BatchSpanSummary> = {};
  for (const e of perf()?.getEntriesByType('measure') ?? []) {
    if (!e.name.startsWith(BATCH_SPAN)) continue;
    const s = (out[e.name.slice(BATCH_SPAN.length)] ??= { count: 0, totalMs: 0, maxMs: 0, detail: {} });
    s.count++;
    s.totalMs += e.duration;
    s.maxMs = Math.max(s.maxMs, e.duration);
    const d = (e as PerformanceMeasure).detail as Record<string, unknown> | null;
    for (const [k, v] of Object.entries(d ?? {})) if (typeof v === 'number') s.detail[k] = (s.detail[k] ?? 0) + v;
  }
  return out;
}

/** Forget the batch spans (a new run starts; a long session never piles them up). */
export function clearBatchSpans(): void {
  const p = perf();
  if (!p || typeof p.clearMeasures !== 'function') return;
  for (const name of new Set(p.getEntriesByType('measure').map((e) => e.name))) if (name.startsWith(BATCH_SPAN)) p.clearMeasures(name);
}
