/**
 * app/lib/sd's LCMScheduler, torch.randn stream and guidance embedding against diffusers / PyTorch
 * (tests/unit/fixtures/lcm-scheduler.json, written by tests/unit/fixtures/gen_lcm_goldens.py).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { LCMScheduler, parseLcmSchedulerConfig } from '../../../app/lib/sd/lcm-scheduler';
import { TorchGenerator } from '../../../app/lib/sd/torch-random';
import { guidanceMode, guidanceScaleEmbedding, combineCfg } from '../../../app/lib/sd/guidance';
import { REPO_ROOT } from '../helpers/shared';

interface StepRec { timestep: number; c_skip: number; c_out: number; model_output_seed: number; sample: number[]; prev_sample: number[]; denoised: number[] }
interface Golden {
  configs: { name: string; config: Record<string, unknown>; alphas_cumprod: number[]; runs: { num_inference_steps: number; timesteps: number[]; noise_seed: number; sample_seed: number; model_output_scale: number; steps: StepRec[] }[] }[];
  randn: { seed: number; shape: number[]; values: number[]; head_tail: boolean; then_3x16: number[] }[];
  guidance_embedding: { w: number[]; dim: number; values: number[] }[];
}
const G = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'tests/unit/fixtures/lcm-scheduler.json'), 'utf8')) as Golden;

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('torch.randn stream (TorchGenerator)', () => {
  for (const r of G.randn) {
    it(`seed ${r.seed}, shape [${r.shape}] and the stream after it match torch.randn`, () => {
      const g = new TorchGenerator(r.seed);
      const n = r.shape.reduce((a, b) => a * b, 1);
      const v = g.randn(n);
      const got = r.head_tail ? [...v.subarray(0, 512), ...v.subarray(n - 512)] : [...v];
      expect(maxAbs(got, r.values)).toBeLessThan(2e-6);
      expect(maxAbs(g.randn(48), r.then_3x16)).toBeLessThan(2e-6);
    });
  }
  it('refuses sizes PyTorch draws on its scalar path and bad seeds', () => {
    expect(() => new TorchGenerator(1).randn(8)).toThrow(/at least 16/);
    expect(() => new TorchGenerator(-1)).toThrow(/non-negative/);
  });
});

describe('LCMScheduler vs diffusers', () => {
  for (const c of G.configs) {
    it(`${c.name}: alphas_cumprod`, () => {
      const s = new LCMScheduler(c.config);
      expect(maxAbs(s.alphasCumprod, c.alphas_cumprod)).toBeLessThan(1e-6);
    });
    for (const run of c.runs) {
      it(`${c.name}: set_timesteps(${run.num_inference_steps}) and every step() (prev_sample, denoised)`, () => {
        const s = new LCMScheduler(c.config);
        expect(s.setTimesteps(run.num_inference_steps)).toEqual(run.timesteps);
        const g = new TorchGenerator(run.noise_seed);
        let sample: Float32Array = Float32Array.from(run.steps[0].sample);
        for (const st of run.steps) {
          // the chained sample: float32 rounding grows by ≤ 1/√ᾱ_t per step (15x at t = 999)
          expect(maxAbs(sample, st.sample)).toBeLessThan(1e-4);
          sample = Float32Array.from(st.sample); // each step on diffusers' own input
          const eps = new TorchGenerator(st.model_output_seed).randn(sample.length).map((x) => Math.fround(x * run.model_output_scale));
          const { cSkip, cOut } = s.boundaryScalings(st.timestep);
          expect(cSkip).toBeCloseTo(st.c_skip, 12);
          expect(cOut).toBeCloseTo(st.c_out, 12);
          const out = s.step(eps, st.timestep, sample, g);
          const scale = Math.max(1, ...st.denoised.map(Math.abs));
          expect(maxAbs(out.denoised, st.denoised)).toBeLessThan(1e-5 * scale);
          expect(maxAbs(out.prevSample, st.prev_sample)).toBeLessThan(1e-5 * scale);
          sample = out.prevSample;
        }
      });
    }
  }
  it('rejects configs and calls diffusers rejects, naming the cause', () => {
    expect(() => parseLcmSchedulerConfig({ prediction_type: 'flow' })).toThrow(/prediction_type/);
    expect(() => parseLcmSchedulerConfig({ beta_schedule: 'sigmoid' })).toThrow(/beta_schedule 'sigmoid'/);
    const s = new LCMScheduler({});
    expect(() => s.step(new Float32Array(16), 999, new Float32Array(16))).toThrow(/setTimesteps/);
    expect(() => s.setTimesteps(51)).toThrow(/original_inference_steps|smaller than/);
    s.setTimesteps(4);
    expect(() => s.step(new Float32Array(16), 500, new Float32Array(16))).toThrow(/not in the schedule/);
  });
});

describe('guidance', () => {
  for (const e of G.guidance_embedding) {
    it(`get_guidance_scale_embedding(w=[${e.w}], ${e.dim})`, () => {
      // sin/cos of float32 arguments up to 1000·w: one float32 ulp of the argument (5e-4 at 6500) is the floor
      expect(maxAbs(guidanceScaleEmbedding(e.w.map((w) => w), e.dim), e.values)).toBeLessThan(1e-3);
    });
  }
  it('mode: embedding when the UNet has time_cond_proj_dim, CFG only above 1 otherwise', () => {
    expect(guidanceMode(1, null)).toEqual({ kind: 'none' });
    expect(guidanceMode(1.5, undefined)).toEqual({ kind: 'cfg', scale: 1.5 });
    expect(guidanceMode(8, 256)).toEqual({ kind: 'embedding', scale: 8, dim: 256 });
    expect(() => guidanceMode(Number.NaN, null)).toThrow(/guidance/);
    expect(Array.from(combineCfg(Float32Array.from([1, 2, 3, 6]), 2))).toEqual([5, 10]);
  });
});
