import { classifierEntry, useAppStore } from '../store';
import { WeightsBadge } from './WeightsBadge';

export function ClassificationPanel() {
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const manifest = useAppStore((s) => s.manifest);
  const classifierId = useAppStore((s) => s.classifierId);
  const setClassifier = useAppStore((s) => s.setClassifier);
  const entry = useAppStore((s) => classifierEntry(s));
  const load = useAppStore((s) => (s.classifierId ? s.models[s.classifierId] : undefined));
  const classifiers = manifest?.models.filter((m) => m.family === 'classifier') ?? [];
  const c = item?.classification;

  return (
    <section className="panel" aria-labelledby="cls-h">
      <h2 id="cls-h">Classification</h2>
      <label>
        Model{' '}
        <select value={classifierId ?? ''} onChange={(e) => setClassifier(e.target.value)} data-testid="classifier-select">
          {classifiers.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name} {m.weights === 'random-fixture' ? '(random weights)' : ''}
            </option>
          ))}
        </select>
      </label>
      {!classifiers.length && <p className="muted">No classifier in the model manifest.</p>}
      {load?.status === 'loading' && <p className="muted" data-testid="model-loading">Loading model… {load.message}</p>}
      {item?.classifying && <p className="muted">Classifying…</p>}
      {item?.classifyError && <p className="error-text">{item.classifyError}</p>}
      {c && (
        <div className="result" data-testid="classification-result">
          <div className="prediction">
            <span className={`pred pred-${c.predicted}`} data-testid="predicted-label">
              {c.predicted}
            </span>
            <span className="confidence" data-testid="confidence">
              {(c.confidence * 100).toFixed(1)}%
            </span>
          </div>
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
            {c.threshold != null && c.positiveProbability != null ? ` · PNEUMONIA when P ≥ ${c.threshold.toFixed(2)} (model card threshold)` : ''} · heatmap:
            attention rollout{c.heatmap ? '' : ' (not available for this model)'}
          </p>
        </div>
      )}
    </section>
  );
}
