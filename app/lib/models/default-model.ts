import type { ModelEntry, ModelFamily } from './manifest-types';

/**
 * The default model of a family (the manifest's `family` word: 'classifier' | 'clip' | 'sam' | 'sd'), used when the
 * user has chosen none or the chosen one left the manifest: the family's first `weights: 'trained'` entry (a model
 * with a card of measured metrics), else its first 'pretrained' one, else its first entry (a random fixture);
 * undefined when the manifest lists no model of that family. One rule for every family, so the app, the CLIs and
 * the tests agree on which model runs by default.
 */
export function defaultModelId(models: readonly ModelEntry[], family: ModelFamily): string | undefined {
  const own = models.filter((m) => m.family === family);
  return (own.find((m) => m.weights === 'trained') ?? own.find((m) => m.weights === 'pretrained') ?? own[0])?.id;
}
