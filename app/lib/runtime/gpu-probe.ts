/**
 * Reads the WebGPU adapter's facts (works in a page and in a worker). Kept separate from execution-plan.ts: this is
 * the only part that touches browser APIs, and it never throws — a missing or broken WebGPU is just `available: false`.
 */
import type { GpuFacts } from './execution-plan';

interface MinimalAdapter {
  features: { has(name: string): boolean };
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
  info?: { vendor?: string; architecture?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}
interface MinimalGpu {
  requestAdapter(opts?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<MinimalAdapter | null>;
}

export const NO_GPU: GpuFacts = { available: false, shaderF16: false, maxBufferSize: 0, maxStorageBufferBindingSize: 0 };

export async function probeGpu(gpu: MinimalGpu | undefined = (globalThis.navigator as unknown as { gpu?: MinimalGpu })?.gpu): Promise<GpuFacts> {
  if (!gpu) return { ...NO_GPU, unavailableReason: 'navigator.gpu is undefined' };
  try {
    const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    if (!adapter) return { ...NO_GPU, unavailableReason: 'requestAdapter() returned null' };
    const info = adapter.info ?? {};
    return {
      available: true,
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      description: info.description ?? '',
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
      shaderF16: adapter.features.has('shader-f16'),
      maxBufferSize: Number(adapter.limits.maxBufferSize),
      maxStorageBufferBindingSize: Number(adapter.limits.maxStorageBufferBindingSize),
    };
  } catch (e) {
    return { ...NO_GPU, unavailableReason: `requestAdapter() failed: ${(e as Error).message}` };
  }
}
