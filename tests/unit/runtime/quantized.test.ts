import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { findModel, parseManifest } from '../../../app/lib/models/manifest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import { quantizedVerdict } from '../../../app/lib/models/quantized';
import { REPO_ROOT } from '../helpers/shared';

const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'public/models/manifest.json'), 'utf8')));
const vit = findModel(manifest, 'pneumonia-vit')!;
const f = (p: string, bytes = 10) => ({ role: 'model', path: p, bytes, sha256: '0'.repeat(64) });
function entryWith(metrics: Record<string, number | string>): ModelEntry {
  return {
    id: 'm', name: 'm', family: 'classifier', task: 't', weights: 'trained', license: 'x', source: 's',
    variants: { fp32: { dtype: 'fp32', files: [f('m/model.onnx', 100)] }, int8: { dtype: 'int8', files: [f('m/model.int8.onnx', 40)] } },
    card: { summary: '', metrics },
  };
}
const base = { accuracy: 0.875, precision: 0.863, recall: 0.951, specificity: 0.748, f1: 0.905, auc: 0.937, ece_15: 0.046 };
const int8Of = (m: Record<string, number>) => Object.fromEntries(Object.entries(m).map(([k, v]) => [`int8_${k}`, v]));

describe('quantizedVerdict', () => {
  it('the shipped pneumonia-vit int8 card matches fp32 within 0.005 (measured on the 624 test images)', () => {
    const v = quantizedVerdict(vit, 'int8');
    expect(v.compared.map((c) => c.metric).sort()).toEqual(['accuracy', 'auc', 'ece_15', 'f1', 'precision', 'recall', 'specificity']);
    for (const c of v.compared) expect(Math.abs(c.diff)).toBeLessThanOrEqual(0.005);
    expect(v.matches).toBe(true);
    // the worst metric is the one whose |int8 - fp32| on the card is largest
    const m = vit.card.metrics as Record<string, number>;
    const worst = v.compared.map((c) => c.metric).reduce((a, b) => (Math.abs(m[`int8_${b}`] - m[b]) > Math.abs(m[`int8_${a}`] - m[a]) ? b : a));
    expect(v.worst!.metric).toBe(worst);
    expect(v.reason).toMatch(/within 0.005 of fp32/);
  });

  it('a metric off by more than the tolerance, or a missing one, does not match', () => {
    const off = quantizedVerdict(entryWith({ ...base, ...int8Of({ ...base, auc: base.auc - 0.0051 }) }));
    expect(off.matches).toBe(false);
    expect(off.worst!.metric).toBe('auc');
    expect(off.reason).toMatch(/auc differs from fp32 by −0.0051/);
    const { ece_15: _drop, ...noEce } = base;
    const missing = quantizedVerdict(entryWith({ ...base, ...int8Of(noEce) }));
    expect(missing.matches).toBe(false);
    expect(missing.reason).toMatch(/lacks .*ece_15/);
    expect(quantizedVerdict(entryWith({})).matches).toBe(false);
  });
});

