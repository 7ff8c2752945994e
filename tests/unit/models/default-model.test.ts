/**
 * defaultModelId: one rule for every family (trained, else pretrained, else the first entry), read from the app's
 * real manifest and from synthetic orderings where the old per-family rules (first non-fixture CLIP, first
 * classifier, cxr-ldm-lcm by id) could disagree.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultModelId } from '../../../app/lib/models/default-model';
import { parseManifest } from '../../../app/lib/models/manifest';
import type { ModelEntry, ModelFamily, WeightsKind } from '../../../app/lib/models/manifest-types';
import { REPO_ROOT } from '../helpers/shared';

const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'public/models/manifest.json'), 'utf8')));
const entry = (id: string, family: ModelFamily, weights: WeightsKind) => ({ id, family, weights }) as ModelEntry;

describe('defaultModelId', () => {
  it('picks the trained model of each family in the app manifest, never a random fixture while a trained one is listed', () => {
    for (const family of ['classifier', 'clip', 'sam', 'sd'] as const) {
      const own = manifest.models.filter((m) => m.family === family);
      const id = defaultModelId(manifest.models, family);
      const chosen = own.find((m) => m.id === id);
      expect(chosen, family).toBeDefined();
      if (own.some((m) => m.weights === 'trained')) expect(chosen!.weights, family).toBe('trained');
    }
  });
  it('trained before pretrained before the first listed; other families never leak in; none listed -> undefined', () => {
    const models = [entry('fix', 'clip', 'random-fixture'), entry('pre', 'clip', 'pretrained'), entry('tr', 'clip', 'trained'), entry('cls', 'classifier', 'trained')];
    expect(defaultModelId(models, 'clip')).toBe('tr');
    expect(defaultModelId(models.slice(0, 2), 'clip')).toBe('pre');
    expect(defaultModelId(models.slice(0, 1), 'clip')).toBe('fix');
    expect(defaultModelId(models, 'classifier')).toBe('cls');
    expect(defaultModelId(models, 'sam')).toBeUndefined();
  });
});
