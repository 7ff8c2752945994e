import type { WeightsKind } from '../lib/models/manifest-types';

/** Shown next to every model output: random fixtures must never pass for a diagnosis. */
export function WeightsBadge({ weights }: { weights: WeightsKind }) {
  if (weights === 'random-fixture') {
    return (
      <span className="badge badge-random" data-testid="weights-badge">
        RANDOM WEIGHTS — not a diagnosis
      </span>
    );
  }
  if (weights === 'external') {
    return (
      <span className="badge badge-random" data-testid="weights-badge">
        external model, weights not checked by this project — not a diagnosis
      </span>
    );
  }
  return (
    <span className="badge badge-trained" data-testid="weights-badge">
      {weights === 'trained' ? 'trained research model — not a diagnosis' : 'pretrained weights — not a diagnosis'}
    </span>
  );
}
