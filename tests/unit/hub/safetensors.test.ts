/**
 * The learned temperature read from model.safetensors by byte ranges (app/services/hub-temperature.ts,
 * app/lib/hub/safetensors.ts) on files written by the safetensors library itself (safetensors.torch.save_file) in
 * F32, F16 and BF16, next to a large tensor so that the offsets matter; the reference values are PyTorch's own
 * float32 of those tensors. Also: the scoring rule of each architecture and the fallback note.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { blobRangeReader, readLearnedTemperature, type RangeReader } from '../../../app/services/hub-temperature';
import { clipScoringConfig, TEMPERATURE_FALLBACK_NOTE, zeroShotScoring } from '../../../app/lib/hub/temperature';
import { PYTHON } from '../helpers/shared';
import { hasTorch } from '../helpers/fixtures';

const WRITE = `
import json, sys, torch
from safetensors.torch import save_file
out = {}
for dt, name in ((torch.float32, "F32"), (torch.float16, "F16"), (torch.bfloat16, "BF16")):
    t = {"text_model.embeddings.weight": torch.randn(300, 40).to(dt),
         "logit_scale": torch.tensor(3.9120230054).to(dt),          # ln 50, shape [] as CLIPModel saves it
         "logit_bias": torch.tensor([-1.5371]).to(dt)}              # shape [1] as SiglipModel saves it
    p = f"{sys.argv[1]}/{name}.safetensors"
    save_file(t, p, metadata={"format": "pt"})
    out[name] = {"scale": float(t["logit_scale"].float().exp()), "bias": float(t["logit_bias"].float())}
print(json.dumps(out))
`;

describe.skipIf(!hasTorch)('learned logit_scale / logit_bias from safetensors by ranges', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'st-'));
  const want = hasTorch ? (JSON.parse(execFileSync(PYTHON, ['-c', WRITE, dir], { encoding: 'utf8' })) as Record<string, { scale: number; bias: number }>) : {};

  it.each(['F32', 'F16', 'BF16'])('%s: the values PyTorch holds, reading only the header and the scalars', async (dt) => {
    const file = fs.readFileSync(path.join(dir, `${dt}.safetensors`));
    let read = 0;
    const inner = blobRangeReader(new Blob([file]));
    const counting: RangeReader = async (a, b) => {
      read += b - a + 1;
      return inner(a, b);
    };
    const t = await readLearnedTemperature(counting, 'SiglipModel');
    if (!('learned' in t)) throw new Error(t.unavailable);
    expect(Math.abs(t.learned.logitScale - want[dt].scale)).toBeLessThan(1e-6 * want[dt].scale);
    expect(t.learned.logitBias).toBe(want[dt].bias);
    expect(read).toBeLessThan(1024);
    expect(file.byteLength).toBeGreaterThan(20_000);
    const clip = await readLearnedTemperature(inner, 'CLIPModel');
    expect('learned' in clip && clip.learned.logitBias === undefined).toBe(true); // CLIP has no bias
  });

  it('a file that is not safetensors, or without logit_scale, gives the reason instead', async () => {
    const bad = await readLearnedTemperature(blobRangeReader(new Blob([new Uint8Array(64).fill(255)])), 'CLIPModel');
    expect(bad).toEqual({ unavailable: expect.stringMatching(/header length .* is not between/) });
    const empty = new TextEncoder().encode('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
    const head = new Uint8Array(8);
    new DataView(head.buffer).setBigUint64(0, BigInt(empty.byteLength), true);
    const none = await readLearnedTemperature(blobRangeReader(new Blob([head, empty, new Uint8Array(4)])), 'CLIPModel');
    expect(none).toEqual({ unavailable: 'model.safetensors has no logit_scale tensor' });
  });
});

describe('scoring rule by architecture', () => {
  it('SigLIP scores with a sigmoid per label, CLIP with a softmax; without learned values the note says so', () => {
    expect(zeroShotScoring('SiglipModel')).toBe('sigmoid');
    expect(zeroShotScoring('CLIPModel')).toBe('softmax');
    const fb = clipScoringConfig('CLIPModel', { logit_scale_init_value: 2.6592 }, { unavailable: 'no model.safetensors in this repo' });
    expect(fb).toMatchObject({ scoring: 'softmax', logit_scale_source: 'config', logit_bias: 0 });
    expect(fb.logit_scale).toBeCloseTo(Math.exp(2.6592), 9);
    expect(fb.temperature_note).toBe(`${TEMPERATURE_FALLBACK_NOTE} (no model.safetensors in this repo)`);
    const learned = clipScoringConfig('SiglipModel', {}, { learned: { logitScale: 10, logitBias: -1.5 }, from: 'model.safetensors' });
    expect(learned).toEqual({ scoring: 'sigmoid', logit_scale: 10, logit_bias: -1.5, logit_scale_source: 'weights' });
  });
});
