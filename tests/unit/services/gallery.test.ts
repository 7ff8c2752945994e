/**
 * runGallery (app/services/sd.ts) on tiny-sd in Node, no mocks of ORT: each image reaches onImage as soon as its
 * side is made (unscored, before the other side runs), the seed's scores arrive with onSeed, and the images are
 * byte-identical to one engine call for all sides of a seed (every side starts from the seed's latents).
 */
import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/shared';
import { parseManifest, findModel } from '../../../app/lib/models/manifest';
import { createSdEngine } from '../../../app/lib/sd';
import { sha256Hex } from '../../../app/lib/models/hashing';
import { encodePng } from '../../../app/lib/imaging/png-encode';
import { nodeGenerateHost } from '../../../app/platform/node/engines';
import { planGallery, runGallery } from '../../../app/services/sd';

const MODELS = path.join(REPO_ROOT, 'public/models');
const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(MODELS, 'manifest.json'), 'utf8')));
const tiny = findModel(manifest, 'tiny-sd')!;

describe('runGallery', () => {
  it('shows each side as soon as it is made, scores per seed after, same bytes as one call per seed', async () => {
    const engine = createSdEngine(nodeGenerateHost(MODELS, 1));
    const req = { entry: tiny, override: 'wasm' as const, source: { kind: 'app' as const } };
    const plan = planGallery(tiny, true, { prompt: 'a chest X-ray showing pneumonia', seed: 7, numSeeds: 2, steps: 2, guidance: 1, side: 'both' });
    const events: string[] = [];
    const calls: string[][] = [];
    const out = await runGallery(
      {
        generate: (r, p, on) => (calls.push(p.sides), engine.generate(r, p, on)),
        // a score that depends on the pixels (mean red level): the scored copy must belong to its own image
        score: async (imgs) => imgs.map((im) => ({ classifierId: 'mean-red', classifierWeights: 'trained' as const, label: 'x', positiveProbability: im.data.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b, 0) / (im.width * im.height * 255) })),
      },
      req,
      plan,
      {
        onImage: (seed, im) => void events.push(`image ${seed}/${im.side}${im.score ? ' scored' : ''}`),
        onSeed: (seed, ims) => void events.push(`seed ${seed}: ${ims.map((i) => `${i.side}${i.score ? ' scored' : ''}`).join(', ')}`),
      },
    );
    expect(out.status).toBe('done');
    expect(calls).toEqual([['base'], ['lora'], ['base'], ['lora']]);
    expect(events).toEqual(['image 7/base', 'image 7/lora', 'seed 7: base scored, lora scored', 'image 8/base', 'image 8/lora', 'seed 8: base scored, lora scored']);
    for (const im of out.images) {
      const red = im.rgba.filter((_, i) => i % 4 === 0).reduce((a, b) => a + b, 0) / (im.width * im.height * 255);
      expect(im.score?.positiveProbability).toBeCloseTo(red, 12);
    }
    // the same images as one engine call with both sides (the seed's latents are shared by the sides)
    for (const seed of plan.seeds) {
      const r = await engine.generate(req, { prompt: plan.prompt, steps: plan.steps, guidanceScale: plan.guidance, seed, sides: ['base', 'lora'] });
      expect(r.ok).toBe(true);
      if (!r.ok) continue;
      for (const im of r.value.images) {
        const sha = await sha256Hex(encodePng(im.rgba, im.width, im.height, 4));
        expect(out.images.find((g) => g.seed === seed && g.side === im.side)?.sha256).toBe(sha);
      }
    }
    await engine.reset();
  }, 180_000);
});
