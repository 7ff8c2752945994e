import { chosenModel, shownClassification, shownOcclusion, useAppStore } from '../store';
import type { HeatmapMethod, OodVerdict } from '../lib/classifier/types';
import { WeightsBadge } from './WeightsBadge';
import { modelDisplayName } from '../lib/models/manifest';

/** The out-of-distribution badge: shown next to a result (and in the batch table) when the model flags the image. */
export function OodBadge({ ood, compact = false }: { ood?: OodVerdict; compact?: boolean }) {
  if (!ood) return null;
  const title = `OOD score ${ood.score.toFixed(2)} (threshold ${ood.threshold.toFixed(2)}): Mahalanobis distances of the model's attention features and of the image's grey-level layout to its training images`;
  if (!ood.ood) return compact ? <span className="muted small" title={title} data-testid="ood-ok">in range</span> : null;
  return (
    <span className="badge badge-ood" role="status" title={title} data-testid="ood-badge">
      {compact ? 'out of distribution' : `⚠ ${ood.badge}`}
    </span>
  );
}

/** An indeterminate progress bar for a stage whose length is unknown (session creation, inference). */
function Busy({ label }: { label: string }) {
  return (
    <div className="progress indeterminate" role="progressbar" aria-label={label} aria-busy="true">
      <div />
    </div>
  );
}

const METHODS: { id: HeatmapMethod; name: string }[] = [
  { id: 'attention-rollout', name: 'attention rollout' },
  { id: 'occlusion', name: 'occlusion sensitivity' },
];

export function ClassificationPanel() {
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const manifest = useAppStore((s) => s.manifest);
  const chooseModel = useAppStore((s) => s.chooseModel);
  const entry = useAppStore((s) => chosenModel(s, 'classifier'));
  const load = useAppStore((s) => (entry ? s.models[entry.id] : undefined));
  const classifiers = manifest?.models.filter((m) => m.family === 'classifier') ?? [];
  // Only a result computed for this image, frame, model and variant (a model switch never shows the old model's).
  const c = useAppStore(shownClassification);
  const method = useAppStore((s) => s.heatmapMethod);
  const setHeatmapMethod = useAppStore((s) => s.setHeatmapMethod);
  const occ = useAppStore(shownOcclusion);

  return (
    <section className="panel" aria-labelledby="cls-h">
      <h2 id="cls-h">Classification</h2>
      <label>
        Model{' '}
        <select value={entry?.id ?? ''} onChange={(e) => void chooseModel('classifier', e.target.value)} data-testid="classifier-select">
          {classifiers.map((m) => (
            <option key={m.id} value={m.id}>
              {modelDisplayName(m)}
            </option>
          ))}
        </select>
      </label>
      {!classifiers.length && <p className="muted">No classifier in the model manifest.</p>}
      {load?.status === 'loading' && (
        <div data-testid="model-loading">
          <p className="muted">Loading model… {load.message}</p>
          <Busy label="Model loading" />
        </div>
      )}
      {item?.classifying && load?.status !== 'loading' && (
        <div data-testid="classifying">
          <p className="muted">Classifying…</p>
          <Busy label="Classification" />
        </div>
      )}
      {item?.classifyError && <p className="error-text">{item.classifyError}</p>}
      {c && (
        <div className="result" data-testid="classification-result">
          {c.ood?.ood ? (
            // Flagged: the badge is the headline; the classification stays readable but small and greyed beside it,
            // since the model was not trained on images like this one (issue 23).
            <div className="prediction prediction-ood" data-testid="prediction-ood">
              <OodBadge ood={c.ood} />
              <span className="muted small" title="The model was not trained on images like this one: its classification is shown for reference only">
                model says{' '}
                <span className="pred-muted" data-testid="predicted-label">
                  {c.predicted}
                </span>{' '}
                <span data-testid="confidence">{(c.confidence * 100).toFixed(1)}%</span>
              </span>
            </div>
          ) : (
            <div className="prediction">
              <span className={`pred pred-${c.predicted}`} data-testid="predicted-label">
                {c.predicted}
              </span>
              <span className="confidence" data-testid="confidence">
                {(c.confidence * 100).toFixed(1)}%
              </span>
            </div>
          )}
          <WeightsBadge weights={c.weights} />
          <table className="probs">
            <tbody>
              {c.labels.map((l, i) => (
                <tr key={l}>
                  <th>{l}</th>
                  <td>
                    <div className="bar">
                      <div style={{ width: `${(c.probabilities[i] * 100).toFixed(1)}%` }} />
                    </div>
                  </td>
                  <td className="num" data-testid={`prob-${l}`}>
                    {c.probabilities[i].toFixed(4)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <p className="muted small">
            {entry?.name} · inference {c.inferenceMs.toFixed(0)} ms
            {c.threshold != null && c.positiveProbability != null ? ` · PNEUMONIA when P ≥ ${c.threshold.toFixed(2)} (model card threshold)` : ''}
            {c.ood ? ` · OOD score ${c.ood.score.toFixed(2)} (flagged above ${c.ood.threshold.toFixed(2)})` : ''}
          </p>
          <label className="small">
            Heatmap{' '}
            <select value={method} onChange={(e) => void setHeatmapMethod(e.target.value as HeatmapMethod)} data-testid="heatmap-method">
              {METHODS.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.name}
                </option>
              ))}
            </select>
          </label>
          <p className="muted small" data-testid="heatmap-caption">
            {method === 'attention-rollout'
              ? c.heatmap
                ? 'Attention rollout (Abnar & Zuidema 2020): how much the class token attends to each patch through all layers. Where the model looks, not why.'
                : 'Attention rollout is not available for this model (its graph has no attentions output).'
              : 'Occlusion sensitivity (Zeiler & Fergus 2014): how much P(predicted class) drops when a grey square hides each patch.'}
          </p>
          {method === 'occlusion' && occ?.status === 'running' && (
            <div data-testid="occlusion-progress">
              <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={occ.total || 1} aria-valuenow={occ.done}>
                <div style={{ width: `${occ.total ? (100 * occ.done) / occ.total : 0}%` }} />
              </div>
              <span className="muted small">occluding {occ.done} / {occ.total || '…'} patches</span>
            </div>
          )}
          {method === 'occlusion' && occ?.status === 'done' && occ.heatmap && (
            <p className="muted small" data-testid="occlusion-done">
              {occ.heatmap.width}×{occ.heatmap.height} patches, target {occ.heatmap.targetLabel} (P {occ.heatmap.baseProbability.toFixed(3)}), {occ.heatmap.runs} runs in {occ.heatmap.ms.toFixed(0)} ms
            </p>
          )}
          {method === 'occlusion' && occ?.status === 'error' && <p className="error-text">{occ.error}</p>}
        </div>
      )}
    </section>
  );
}
