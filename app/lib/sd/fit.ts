/**
 * Will an SD model fit? Checked on the page before anything is downloaded and again in the worker before any
 * session is created, so a model that cannot run is refused with the numbers instead of crashing the tab.
 *
 * Memory model (an estimate, documented so the numbers can be checked):
 * - weights: the bytes of every graph the generation holds at once (text_encoder, the UNet graph(s) of the layout,
 *   vae_decoder; each .onnx plus its external data). ONNX Runtime Web reads a graph's bytes into the WASM heap to
 *   create its session, on WebGPU too, and keeps the weights there on WASM.
 * - activations: the UNet's largest attention score tensor, heads · (h·w)² · 4 bytes · UNet batch at the first
 *   (full-resolution) cross-attention level (SD 1.5 at 512 px, 8 heads, 64×64 latents: 537 MB per sample), plus the
 *   VAE decoder's largest feature map, 128 channels · H · W · 4 bytes · 3 live buffers (SD 1.5 at 512 px: 403 MB).
 * Limits: WASM heap 4 GiB (wasm32 address space, what onnxruntime-web 1.30's wasm build can address);
 * navigator.deviceMemory (GiB, a rounded-down lower bound, at most 8 in Chrome) when the browser reports it;
 * on WebGPU each graph's largest file against maxBufferSize / maxStorageBufferBindingSize.
 */
import type { ModelEntry, ModelFile, ModelVariant } from '../models/manifest-types';
import { formatBytes, type Backend, type GpuFacts } from '../runtime/execution-plan';
import type { UnetLayout } from './pipeline';

export const WASM_HEAP_LIMIT = 4 * 1024 ** 3;

export interface FitInputs {
  entry: ModelEntry;
  variant: ModelVariant;
  layout: UnetLayout;
  backend: Backend;
  gpu: GpuFacts;
  /** navigator.deviceMemory in GiB, when the browser reports it. */
  deviceMemoryGiB?: number;
  /** CFG doubles the UNet batch. */
  unetBatch?: number;
}

export interface FitReport {
  ok: boolean;
  weightsBytes: number;
  activationBytes: number;
  totalBytes: number;
  /** Roles of the graphs held at once. */
  roles: string[];
  /** Why not (with the numbers), or the budget line shown next to the model. */
  message: string;
}

/** Bytes of a graph file including its external data. */
export function graphBytes(f: ModelFile): number {
  return f.bytes + (f.external_data ?? []).reduce((a, e) => a + e.bytes, 0);
}

/** The graph roles a generation holds for a layout. */
export function layoutRoles(layout: UnetLayout, variant: ModelVariant): string[] {
  const has = (r: string) => variant.files.some((f) => f.role === r);
  const unets = layout === 'scaled' ? ['unet_scaled'] : has('unet_lora') ? ['unet', 'unet_lora'] : ['unet'];
  return ['text_encoder', ...unets, 'vae_decoder'];
}

export function activationEstimate(entry: ModelEntry, unetBatch = 1): number {
  const c = (entry.config ?? {}) as Record<string, number>;
  const ls = c.latent_size ?? 64;
  const img = c.image_size ?? ls * 8;
  const heads = c.attention_heads ?? 8;
  const attn = heads * (ls * ls) ** 2 * 4 * unetBatch;
  const vae = 128 * img * img * 4 * 3;
  return attn + vae;
}

export function checkSdFit(inp: FitInputs): FitReport {
  const roles = layoutRoles(inp.layout, inp.variant);
  const files = roles.map((r) => inp.variant.files.find((f) => f.role === r));
  const missing = roles.filter((_, i) => !files[i]);
  const weightsBytes = files.reduce((a, f) => a + (f ? graphBytes(f) : 0), 0);
  const activationBytes = activationEstimate(inp.entry, inp.unetBatch ?? 1);
  const totalBytes = weightsBytes + activationBytes;
  const base = { weightsBytes, activationBytes, totalBytes, roles };
  const need = `${formatBytes(weightsBytes)} of weights (${roles.join(' + ')}) + ~${formatBytes(activationBytes)} of activations = ${formatBytes(totalBytes)}`;
  if (missing.length) return { ...base, ok: false, message: `${inp.entry.name} (${inp.variant.dtype}) lists no ${missing.join(', ')} file` };
  if (inp.backend === 'wasm' && totalBytes > WASM_HEAP_LIMIT) {
    return { ...base, ok: false, message: `${inp.entry.name} (${inp.variant.dtype}) needs ${need}, more than the 4 GiB a WebAssembly heap can address: it cannot run on WASM here` };
  }
  if (inp.backend === 'webgpu') {
    const limit = Math.min(inp.gpu.maxBufferSize, inp.gpu.maxStorageBufferBindingSize);
    const big = files.filter((f): f is ModelFile => !!f && Math.max(f.bytes, ...(f.external_data ?? []).map((e) => e.bytes)) > limit);
    if (big.length) {
      return { ...base, ok: false, message: `${inp.entry.name}: ${big.map((f) => `${f.path} (${formatBytes(graphBytes(f))})`).join(', ')} exceed the adapter's buffer limit (${formatBytes(limit)})` };
    }
    // the bytes pass through the WASM heap on their way to the GPU: the largest graph must fit there
    const largest = Math.max(...files.map((f) => (f ? graphBytes(f) : 0)));
    if (largest > WASM_HEAP_LIMIT) return { ...base, ok: false, message: `${inp.entry.name}: its largest graph (${formatBytes(largest)}) cannot be read into the 4 GiB WebAssembly heap to create a WebGPU session` };
  }
  if (inp.deviceMemoryGiB && totalBytes > inp.deviceMemoryGiB * 1024 ** 3) {
    return { ...base, ok: false, message: `${inp.entry.name} (${inp.variant.dtype}) needs ${need}; this device reports ${inp.deviceMemoryGiB} GiB of memory (navigator.deviceMemory)` };
  }
  return { ...base, ok: true, message: `needs ${need} on ${inp.backend.toUpperCase()}` };
}

/** The layout a model offers (manifest config.unet_layout, else from its files); 'scaled' wins when both exist (one UNet to download and hold). */
export function chooseLayout(entry: ModelEntry, variant: ModelVariant): { layout: UnetLayout; hasLora: boolean } {
  const has = (r: string) => variant.files.some((f) => f.role === r);
  if (has('unet_scaled')) return { layout: 'scaled', hasLora: true };
  if (has('unet')) return { layout: 'two-graph', hasLora: has('unet_lora') };
  throw new Error(`${entry.name}: the manifest lists no UNet (unet or unet_scaled)`);
}

/** Files to download for a generation: the layout's graphs plus tokenizer and scheduler config (not the other layout). */
export function filesForLayout(variant: ModelVariant, layout: UnetLayout): ModelFile[] {
  const roles = new Set([...layoutRoles(layout, variant), 'tokenizer', 'scheduler_config']);
  return variant.files.filter((f) => roles.has(f.role));
}
