// The pure helpers of the benches (scripts/bench/stats.ts, scripts/bench/browser-report.ts): statistics, the WebGPU
// gate of `npm run bench:browser-graphs`, reading `npm run bench`'s bench.json and the table rows.
import { describe, expect, it } from 'vitest';
import { graphTable, nodeWasmIndex, webgpuGate, type BrowserRow } from '../../../scripts/bench/browser-report';
import { median, percentile, ratio, summarize } from '../../../scripts/bench/stats';

describe('stats', () => {
  it('median, percentile (linear, as numpy) and min', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    // numpy.percentile([1..10], 95) = 9.55
    expect(percentile([10, 9, 8, 7, 6, 5, 4, 3, 2, 1], 0.95)).toBeCloseTo(9.55, 10);
    expect(summarize([5, 2, 9])).toEqual({ p50_ms: 5, p95_ms: 8.6, min_ms: 2, n: 3 });
    expect(Number.isNaN(summarize([]).p50_ms)).toBe(true);
    expect(ratio(3, 2)).toBe('1.50x');
    expect(ratio(3, 0)).toBe('—');
    expect(ratio(undefined, 2)).toBe('—');
  });
});

describe('webgpuGate', () => {
  const base = { shaderF16: false, slowdown: 100, maxGraphS: 60 };
  it('runs tiny fixtures, skips fp16 without shader-f16, and estimates the rest from WASM', () => {
    expect(webgpuGate({ ...base, model: 'tiny-sd', dtype: 'fp32', wasmRunsS: 5 })).toEqual({ run: true });
    expect(webgpuGate({ ...base, model: 'tiny-sd', dtype: 'fp16' })).toMatchObject({ run: false, reason: expect.stringMatching(/shader-f16/) });
    expect(webgpuGate({ ...base, model: 'lung-sam', dtype: 'fp32', wasmRunsS: 0.3 })).toEqual({ run: true });
    const skip = webgpuGate({ ...base, model: 'pneumonia-vit', dtype: 'fp32', wasmRunsS: 1.2 });
    expect(skip).toMatchObject({ run: false, reason: expect.stringMatching(/^skipped: over cap \(estimated 120 s/) });
  });
});

describe('nodeWasmIndex and graphTable', () => {
  const bench = {
    rows: [
      { graph: { key: 'm/fp32/model' }, wasm: { warm_p50_ms: 2, warm_min_ms: 1.5, first_run_batch: 1, batch8_min_ms: 10 } },
      { graph: { key: 'x/fp32/model' }, wasm: { unavailable: 'not in --backends' } },
    ],
  };
  it('keeps measured Node WASM rows with their batch minima', () => {
    const idx = nodeWasmIndex(bench);
    expect(Object.keys(idx)).toEqual(['m/fp32/model']);
    expect(idx['m/fp32/model'].batch_min_ms).toEqual({ '1': 1.5, '8': 10 });
  });
  it('prints ratios against Node WASM and browser WASM, and skipped rows with their reason', () => {
    const g = { key: 'm/fp32/model', model: 'm', weights: 'trained', dtype: 'fp32', role: 'model', bytes: 1, app_batch: 8 };
    const rows: BrowserRow[] = [
      { ...g, ep: 'wasm', status: 'ok', cold_create_ms: 100, second_create_ms: 20, first_run_ms: 5, first_run_batch: 1, batches: { '1': summarize([3, 3, 3]), '8': summarize([20, 25]) } },
      { ...g, ep: 'webgpu', status: 'ok', cold_create_ms: 100, first_run_ms: 5, first_run_batch: 1, batches: { '1': summarize([300]) } },
      { ...g, key: 'n/fp32/model', ep: 'webgpu', status: 'skipped', reason: 'skipped: over cap (estimated 120 s)' },
    ];
    const lines = graphTable(rows, nodeWasmIndex(bench)).split('\n');
    expect(lines[2]).toContain('| 1.50x (2.00x) |');
    expect(lines[2]).toContain('| 8: 22.50 / 20.00 |');
    expect(lines[3]).toMatch(/\| 100\.00x \|$/);
    expect(lines[4]).toContain('| webgpu | skipped: over cap (estimated 120 s) |');
  });
});
