import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { modelDisplayName, parseManifest } from '../../../app/lib/models/manifest';
import { REPO_ROOT } from '../helpers/shared';

describe('modelDisplayName (issue 18.9: "Tiny ViT classifier (random weights) (random weights)")', () => {
  const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'public/models/manifest.json'), 'utf8')));
  it.each(manifest.models.map((m) => [m.id, m] as const))('%s: "random weights" once for a fixture, never for trained weights', (_id, m) => {
    const n = (modelDisplayName(m).match(/random weights/gi) ?? []).length;
    expect(n).toBe(m.weights === 'random-fixture' ? 1 : 0);
  });
  it('marks a fixture whose name does not say it', () => {
    expect(modelDisplayName({ name: 'Tiny SD', weights: 'random-fixture' })).toBe('Tiny SD (random weights)');
    expect(modelDisplayName({ name: 'Pneumonia ViT', weights: 'trained' })).toBe('Pneumonia ViT');
  });
});
