import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { findModel, parseManifest } from '../../../app/lib/models/manifest';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';
import { modelPlanFacts, planExecution, type ExecutionInputs } from '../../../app/lib/runtime/execution-plan';
import { withDtypeChoice } from '../../../app/store/models';
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

describe('dtype in the plan', () => {
  const wasmOnly = { available: false, shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };
  const gpu = { available: true, vendor: 'nvidia', isFallbackAdapter: false, shaderF16: false, maxBufferSize: 2 ** 31, maxStorageBufferBindingSize: 2 ** 31 };
  const inp = (over: Partial<ExecutionInputs> = {}): ExecutionInputs => ({
    gpu: wasmOnly, crossOriginIsolated: true, hardwareConcurrency: 2, override: 'auto', ...modelPlanFacts(vit), ...over,
  });

  it('auto on WASM takes int8 when its card matches, and says why', () => {
    const p = planExecution(inp());
    expect(p.backend).toBe('wasm');
    expect(p.dtype).toBe('int8');
    expect(p.reasons.join(' ')).toMatch(/int8 variant on WASM: int8 card metrics within 0.005/);
  });

  it('auto stays fp32 when the card does not match, on WebGPU, and when fp32 is chosen', () => {
    const bad = entryWith({ ...base, ...int8Of({ ...base, f1: 0.8 }) });
    expect(planExecution(inp(modelPlanFacts(bad))).dtype).toBe('fp32');
    expect(planExecution(inp({ gpu })).dtype).toBe('fp32');
    // fp32 chosen in the Models view: the request's entry carries only that variant
    expect(planExecution(inp(modelPlanFacts(withDtypeChoice(vit, 'fp32')))).dtype).toBe('fp32');
  });

  it('an explicit int8 choice holds on WebGPU too; auto or an absent dtype leaves the entry as it is', () => {
    const only8 = withDtypeChoice(vit, 'int8');
    expect(Object.keys(only8.variants)).toEqual(['int8']);
    const p = planExecution(inp({ gpu, ...modelPlanFacts(only8) }));
    expect([p.backend, p.dtype]).toEqual(['webgpu', 'int8']);
    expect(p.reasons.join(' ')).toMatch(/chosen in the Models view/);
    expect(withDtypeChoice(vit, 'auto')).toBe(vit);
    expect(withDtypeChoice(vit, 'fp16')).toBe(vit); // pneumonia-vit has no fp16 variant
  });
});
