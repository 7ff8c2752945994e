import { describe, expect, it } from 'vitest';
import {
  type ExecutionInputs,
  type GpuFacts,
  fallbackToWasm,
  modelPlanFacts,
  NoUsableVariantError,
  planExecution,
} from '../../../app/lib/runtime/execution-plan';
import { probeGpu } from '../../../app/lib/runtime/gpu-probe';

const GiB = 1024 ** 3;
const hardwareGpu: GpuFacts = {
  available: true,
  vendor: 'nvidia',
  architecture: 'hopper',
  isFallbackAdapter: false,
  shaderF16: true,
  maxBufferSize: 4 * GiB,
  maxStorageBufferBindingSize: 2 * GiB,
};
// Measured here: Chromium's SwiftShader adapter (see shared/notes/webgpu-here.md).
const swiftshader: GpuFacts = {
  available: true,
  vendor: 'google',
  architecture: 'swiftshader',
  isFallbackAdapter: true,
  shaderF16: false,
  maxBufferSize: GiB,
  maxStorageBufferBindingSize: GiB,
};
const noGpu: GpuFacts = { available: false, shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };

function inputs(over: Partial<ExecutionInputs> = {}): ExecutionInputs {
  return {
    gpu: hardwareGpu,
    crossOriginIsolated: true,
    hardwareConcurrency: 8,
    override: 'auto',
    largestFileBytes: 20e6,
    availableDtypes: ['fp32', 'fp16'],
    ...over,
  };
}

describe('planExecution', () => {
  it('auto on a real GPU with shader-f16 picks WebGPU fp16', () => {
    const p = planExecution(inputs());
    expect(p.backend).toBe('webgpu');
    expect(p.dtype).toBe('fp16');
    expect(p.numThreads).toBe(4);
    expect(p.reasons.join(' ')).toMatch(/shader-f16/);
  });

  it('never picks fp16 without shader-f16', () => {
    const p = planExecution(inputs({ gpu: { ...hardwareGpu, shaderF16: false } }));
    expect(p.backend).toBe('webgpu');
    expect(p.dtype).toBe('fp32');
    expect(p.reasons.join(' ')).toMatch(/lacks shader-f16/);
  });

  it('an fp16-only model without shader-f16 has no usable variant (WebGPU needs shader-f16, WASM gets no fp16)', () => {
    expect(() => planExecution(inputs({ gpu: { ...hardwareGpu, shaderF16: false }, availableDtypes: ['fp16'] }))).toThrow(
      NoUsableVariantError,
    );
  });

  it('auto with a software fallback adapter (SwiftShader) picks WASM and says why', () => {
    const p = planExecution(inputs({ gpu: swiftshader }));
    expect(p.backend).toBe('wasm');
    expect(p.dtype).toBe('fp32');
    expect(p.reasons.join(' ')).toMatch(/software fallback/);
  });

  it('forcing WebGPU uses even a fallback adapter', () => {
    const p = planExecution(inputs({ gpu: swiftshader, override: 'webgpu' }));
    expect(p.backend).toBe('webgpu');
    expect(p.dtype).toBe('fp32');
  });

  it('forcing WASM wins over a good GPU', () => {
    const p = planExecution(inputs({ override: 'wasm' }));
    expect(p.backend).toBe('wasm');
    expect(p.dtype).toBe('fp32');
    expect(p.reasons[0]).toMatch(/settings/);
  });

  it('no adapter: WASM, and a forced WebGPU says it could not be honoured', () => {
    expect(planExecution(inputs({ gpu: noGpu })).backend).toBe('wasm');
    const p = planExecution(inputs({ gpu: { ...noGpu, unavailableReason: 'requestAdapter() returned null' }, override: 'webgpu' }));
    expect(p.backend).toBe('wasm');
    expect(p.reasons.join(' ')).toMatch(/requested.*requestAdapter\(\) returned null/);
  });

  it('a model file larger than maxBufferSize or maxStorageBufferBindingSize goes to WASM with the limits named', () => {
    const p = planExecution(inputs({ largestFileBytes: 3 * GiB, override: 'webgpu' }));
    expect(p.backend).toBe('wasm');
    expect(p.reasons.join(' ')).toMatch(/exceeds.*maxStorageBufferBindingSize 2\.0 GB/);
    const q = planExecution(inputs({ gpu: swiftshader, largestFileBytes: 1.5 * GiB, override: 'webgpu' }));
    expect(q.backend).toBe('wasm');
  });

  it('WASM threads need cross-origin isolation and are capped', () => {
    const p = planExecution(inputs({ crossOriginIsolated: false, override: 'wasm' }));
    expect(p.numThreads).toBe(1);
    expect(p.reasons.join(' ')).toMatch(/cross-origin isolated/);
    expect(planExecution(inputs({ hardwareConcurrency: 2 })).numThreads).toBe(2);
    expect(planExecution(inputs({ hardwareConcurrency: 64 })).numThreads).toBe(4);
  });

  it('WASM prefers fp32, then int8, never fp16', () => {
    expect(planExecution(inputs({ override: 'wasm', availableDtypes: ['fp16', 'int8'] })).dtype).toBe('int8');
    expect(() => planExecution(inputs({ override: 'wasm', availableDtypes: ['fp16'] }))).toThrow(NoUsableVariantError);
    expect(() => planExecution(inputs({ availableDtypes: [] }))).toThrow(/no variant/);
  });

  it('fallbackToWasm keeps the cause and switches fp16 to a WASM dtype', () => {
    const inp = inputs();
    const p = planExecution(inp);
    const f = fallbackToWasm(p, new Error('GPUPipelineError: boom'), inp);
    expect(f.backend).toBe('wasm');
    expect(f.dtype).toBe('fp32');
    expect(f.reasons.at(-1)).toMatch(/WebGPU session creation failed \(GPUPipelineError: boom\): fell back to WASM/);
  });
});

describe('probeGpu', () => {
  it('reports no adapter without throwing', async () => {
    expect((await probeGpu(undefined)).available).toBe(false);
    expect((await probeGpu({ requestAdapter: async () => null })).unavailableReason).toMatch(/null/);
    expect((await probeGpu({ requestAdapter: async () => Promise.reject(new Error('lost')) })).unavailableReason).toMatch(/lost/);
  });

  it('reads info, shader-f16 and limits', async () => {
    const facts = await probeGpu({
      requestAdapter: async () => ({
        features: new Set(['timestamp-query']),
        limits: { maxBufferSize: GiB, maxStorageBufferBindingSize: GiB / 2 },
        info: { vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true },
      }),
    });
    expect(facts).toMatchObject({ available: true, vendor: 'google', architecture: 'swiftshader', isFallbackAdapter: true, shaderF16: false });
    expect(facts.maxStorageBufferBindingSize).toBe(GiB / 2);
  });
});

describe('modelPlanFacts', () => {
  it('lists dtypes with files and the largest ONNX graph of any variant', () => {
    const f = (path: string, bytes: number) => ({ role: 'x', path, bytes, sha256: '0'.repeat(64) });
    const facts = modelPlanFacts({
      id: 'm',
      name: 'm',
      family: 'sam',
      task: 't',
      weights: 'random-fixture',
      license: 'MIT',
      source: 's',
      variants: {
        fp32: { dtype: 'fp32', files: [f('m/enc.onnx', 900), f('m/dec.onnx', 100), f('m/tokenizer.json', 5000)] },
        fp16: { dtype: 'fp16', files: [f('m/enc16.onnx', 450)] },
        int8: { dtype: 'int8', files: [] },
      },
      card: { summary: '' },
    });
    expect(facts.availableDtypes.sort()).toEqual(['fp16', 'fp32']);
    expect(facts.largestFileBytes).toBe(900);
  });
});
