/**
 * Statistics and number formatting shared by the benches (scripts/bench/run.ts and its children, and
 * scripts/bench/browser-graphs.ts), so every table computes p50/p95/min the same way. Pure: no I/O.
 */

/** Median of a non-empty list (mean of the two middle values for an even count); NaN for an empty one. */
export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Percentile q in [0, 1] with linear interpolation between closest ranks (numpy's default); NaN when empty. */
export function percentile(xs: number[], q: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const k = (s.length - 1) * q;
  const lo = Math.floor(k), hi = Math.ceil(k);
  return s[lo] + (s[hi] - s[lo]) * (k - lo);
}

/** The summary the bench tables print for a list of timings in ms. */
export interface TimingSummary {
  p50_ms: number;
  p95_ms: number;
  /** On a shared, oversubscribed machine the minimum is the closest to an uncontended run. */
  min_ms: number;
  n: number;
}

export function summarize(timesMs: number[]): TimingSummary {
  return { p50_ms: median(timesMs), p95_ms: percentile(timesMs, 0.95), min_ms: timesMs.length ? Math.min(...timesMs) : NaN, n: timesMs.length };
}

/** A number with d decimals, or '—' for anything that is not a finite number (missing, skipped, NaN). */
export function f1(x: unknown, d = 1): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(d) : '—';
}

/** a ÷ b as '1.23x', or '—' when either is missing or b is not positive. */
export function ratio(a: unknown, b: unknown): string {
  return typeof a === 'number' && typeof b === 'number' && Number.isFinite(a) && b > 0 ? `${(a / b).toFixed(2)}x` : '—';
}
