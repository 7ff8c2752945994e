import type { ModelEntry } from '../models/manifest-types';

/** Default segment model: the project's trained one when present, else pretrained, else the first SAM-family entry. */
export function defaultSegmentModelId(models: readonly ModelEntry[]): string | undefined {
  const sams = models.filter((m) => m.family === 'sam');
  return (sams.find((m) => m.weights === 'trained') ?? sams.find((m) => m.weights === 'pretrained') ?? sams[0])?.id;
}
