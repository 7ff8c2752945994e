/**
 * The LCM step (plus classifier-free guidance and the VAE's 1/scaling_factor) as a tiny ONNX graph, built here in
 * TypeScript, so that on WebGPU the latents never leave the GPU between UNet steps: the UNet's gpu-buffer output
 * feeds this graph, whose gpu-buffer outputs feed the next UNet step and, at the end, the VAE decoder.
 *
 * Same float32 operations, in the same order, as LCMScheduler.step (lcm-scheduler.ts, diffusers' scheduling_lcm.py):
 *   eps      = cfg ? u + g·(c - u) with [u; c] = Split(model_output) : model_output
 *   x0       = (xA·sample - xB·eps) / xC                 (prediction_type, see LcmStepCoefficients)
 *   x0       = clip ? Min(Max(x0, -r), r) : x0
 *   denoised = c_out·x0 + c_skip·sample
 *   prev     = √ᾱ_prev·denoised + √(1-ᾱ_prev)·noise     (ignored on the last step)
 *   unet_sample = cfg ? Concat(prev, prev) : —          (the next UNet batch [uncond; cond])
 *   vae_latents = denoised / scaling_factor
 * Scalars are float32 [1] inputs (broadcast). The ONNX protobuf is written by hand (onnx.proto3 field numbers), a
 * few hundred bytes, opset 17.
 */

export interface StepGraphOptions {
  cfg: boolean;
  clip: boolean;
}

export const STEP_SCALAR_INPUTS = ['xA', 'xB', 'xC', 'c_out', 'c_skip', 'sqrt_alpha_prev', 'sqrt_beta_prev', 'guidance', 'scaling_factor', 'clip_lo', 'clip_hi'] as const;

class Pb {
  private parts: number[] = [];
  varint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n) x = BigInt.asUintN(64, x);
    do {
      let b = Number(x & 0x7fn);
      x >>= 7n;
      if (x > 0n) b |= 0x80;
      this.parts.push(b);
    } while (x > 0n);
    return this;
  }
  key(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.key(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2).varint(b.length);
    for (const x of b) this.parts.push(x);
    return this;
  }
  str(field: number, s: string): this {
    // names here are ASCII identifiers
    return this.bytes(field, Uint8Array.from(s, (ch) => ch.charCodeAt(0) & 0x7f));
  }
  msg(field: number, m: Pb): this {
    return this.bytes(field, m.done());
  }
  done(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

const FLOAT = 1;

function valueInfo(name: string, dims: (number | string)[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === 'number' ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, FLOAT).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

function node(op: string, inputs: string[], outputs: string[], attrs: { name: string; i: number }[] = []): Pb {
  const n = new Pb();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, `${op}_${outputs[0]}`).str(4, op);
  for (const a of attrs) n.msg(5, new Pb().str(1, a.name).int(20, 2).int(3, a.i)); // AttributeProto INT
  return n;
}

const cache = new Map<string, Uint8Array>();

/** ONNX bytes of the step graph for these options (memoised). */
export function lcmStepGraph(opts: StepGraphOptions): Uint8Array {
  const key = `${opts.cfg}|${opts.clip}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const lat = ['batch', 'channels', 'height', 'width'];
  const nodes: Pb[] = [];
  let eps = 'model_output';
  if (opts.cfg) {
    nodes.push(node('Split', ['model_output'], ['eps_uncond', 'eps_cond'], [{ name: 'axis', i: 0 }]));
    nodes.push(node('Sub', ['eps_cond', 'eps_uncond'], ['eps_delta']));
    nodes.push(node('Mul', ['guidance', 'eps_delta'], ['eps_scaled']));
    nodes.push(node('Add', ['eps_uncond', 'eps_scaled'], ['eps_guided']));
    eps = 'eps_guided';
  }
  nodes.push(node('Mul', ['xA', 'sample'], ['x_a']));
  nodes.push(node('Mul', ['xB', eps], ['x_b']));
  nodes.push(node('Sub', ['x_a', 'x_b'], ['x_ab']));
  nodes.push(node('Div', ['x_ab', 'xC'], [opts.clip ? 'x0_raw' : 'x0']));
  if (opts.clip) {
    nodes.push(node('Max', ['x0_raw', 'clip_lo'], ['x0_lo']));
    nodes.push(node('Min', ['x0_lo', 'clip_hi'], ['x0']));
  }
  nodes.push(node('Mul', ['c_out', 'x0'], ['d_out']));
  nodes.push(node('Mul', ['c_skip', 'sample'], ['d_skip']));
  nodes.push(node('Add', ['d_out', 'd_skip'], ['denoised']));
  nodes.push(node('Mul', ['sqrt_alpha_prev', 'denoised'], ['p_signal']));
  nodes.push(node('Mul', ['sqrt_beta_prev', 'noise'], ['p_noise']));
  nodes.push(node('Add', ['p_signal', 'p_noise'], ['prev_sample']));
  if (opts.cfg) nodes.push(node('Concat', ['prev_sample', 'prev_sample'], ['unet_sample'], [{ name: 'axis', i: 0 }]));
  nodes.push(node('Div', ['denoised', 'scaling_factor'], ['vae_latents']));

  const g = new Pb();
  for (const n of nodes) g.msg(1, n);
  g.str(2, 'lcm_step');
  const used = new Set(STEP_SCALAR_INPUTS.filter((s) => opts.clip || (s !== 'clip_lo' && s !== 'clip_hi')).filter((s) => opts.cfg || s !== 'guidance'));
  g.msg(11, valueInfo('sample', lat));
  g.msg(11, valueInfo('model_output', opts.cfg ? ['unet_batch', ...lat.slice(1)] : lat));
  g.msg(11, valueInfo('noise', lat));
  for (const s of STEP_SCALAR_INPUTS) if (used.has(s)) g.msg(11, valueInfo(s, [1]));
  g.msg(12, valueInfo('prev_sample', lat));
  g.msg(12, valueInfo('denoised', lat));
  if (opts.cfg) g.msg(12, valueInfo('unet_sample', ['unet_batch', ...lat.slice(1)]));
  g.msg(12, valueInfo('vae_latents', lat));
  const model = new Pb().int(1, 8).str(2, 'cxr-studio').msg(7, g).msg(8, new Pb().str(1, '').int(2, 17));
  const bytes = model.done();
  cache.set(key, bytes);
  return bytes;
}

/** Names of the scalar inputs the graph for these options takes. */
export function stepGraphScalarInputs(opts: StepGraphOptions): string[] {
  return STEP_SCALAR_INPUTS.filter((s) => (opts.clip || (s !== 'clip_lo' && s !== 'clip_hi')) && (opts.cfg || s !== 'guidance'));
}
