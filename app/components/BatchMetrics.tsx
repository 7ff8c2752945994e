/** The batch's classifier metrics at the threshold (binary: confusion, ROC; multi-class: confusion at argmax). */
import { useAppStore } from '../store';
import type { BatchLabels } from '../lib/batch/rows';

function MulticlassMetricsView({ m, n }: { m: NonNullable<NonNullable<ReturnType<typeof useAppStore.getState>['batch']['derived']['metrics']>['multiclass']>; n: number }) {
  return (
    <div className="metrics" data-testid="batch-metrics">
      <p className="small muted">Prediction: the label of highest probability ({m.labels.length} classes).</p>
      <table className="confusion" data-testid="confusion-matrix">
        <thead>
          <tr>
            <th />
            {m.labels.map((l) => (
              <th key={l}>pred {l}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {m.labels.map((l, i) => (
            <tr key={l}>
              <th>true {l}</th>
              {m.confusion[i].map((v, j) => (
                <td key={j}>{v}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
      <dl className="facts" data-testid="metric-values">
        <dt>n</dt>
        <dd>{n}</dd>
        <dt>accuracy</dt>
        <dd data-testid="metric-accuracy">{m.accuracy.toFixed(3)}</dd>
        <dt>macro F1</dt>
        <dd>{m.macroF1.toFixed(3)}</dd>
        {m.perClass.map((c) => (
          <div key={c.label} className="fact">
            <dt>{c.label}</dt>
            <dd>
              recall {c.recall.toFixed(3)} · precision {c.precision.toFixed(3)} · n {c.support}
            </dd>
          </div>
        ))}
      </dl>
    </div>
  );
}

export function BatchMetrics({ threshold, labels }: { threshold: number; labels: BatchLabels }) {
  const setThreshold = useAppStore((s) => s.batchSetThreshold);
  const precisionAt5 = useAppStore((s) => s.batch.precisionAt5);
  const metrics = useAppStore((s) => s.batch.derived.metrics);
  if (!metrics) return <p className="muted small">Metrics need ground truth (folders named {labels.labels.map((l) => `${l}/`).join(', ')}) and classifier results.</p>;
  if (metrics.multiclass) return <MulticlassMetricsView m={metrics.multiclass} n={metrics.n} />;
  const m = metrics.at!;
  const pos = labels.positive!;
  const neg = labels.negative!;
  const roc = metrics.roc;
  const c = m.confusion;
  const W = 220;
  const path = roc ? roc.curve.fpr.map((x, i) => `${i ? 'L' : 'M'}${(x * W).toFixed(1)},${((1 - roc.curve.tpr[i]) * W).toFixed(1)}`).join(' ') : '';
  const fprAt = 1 - m.specificity;
  return (
    <div className="metrics" data-testid="batch-metrics">
      <label className="threshold">
        Threshold on P({pos}): <output data-testid="threshold-value">{threshold.toFixed(2)}</output>
        <input type="range" min={0} max={1} step={0.01} value={threshold} onChange={(e) => setThreshold(Number(e.target.value))} aria-label="Decision threshold" />
      </label>
      <div className="grid-2">
        <div>
          <table className="confusion" data-testid="confusion-matrix">
            <thead>
              <tr>
                <th />
                <th>pred {neg}</th>
                <th>pred {pos}</th>
              </tr>
            </thead>
            <tbody>
              <tr>
                <th>true {neg}</th>
                <td>{c.tn}</td>
                <td>{c.fp}</td>
              </tr>
              <tr>
                <th>true {pos}</th>
                <td>{c.fn}</td>
                <td>{c.tp}</td>
              </tr>
            </tbody>
          </table>
          <dl className="facts" data-testid="metric-values">
            <dt>n</dt>
            <dd>{metrics.n}</dd>
            <dt>accuracy</dt>
            <dd data-testid="metric-accuracy">{m.accuracy.toFixed(3)}</dd>
            <dt>precision</dt>
            <dd>{m.precision.toFixed(3)}</dd>
            <dt>recall (sensitivity)</dt>
            <dd>{m.recall.toFixed(3)}</dd>
            <dt>specificity</dt>
            <dd>{m.specificity.toFixed(3)}</dd>
            <dt>F1</dt>
            <dd>{m.f1.toFixed(3)}</dd>
            <dt>AUC</dt>
            <dd data-testid="metric-auc">{roc ? roc.auc.toFixed(3) : '— (needs both classes)'}</dd>
            <dt title="label agreement of the 5 nearest neighbours by classifier embedding (cosine, self excluded)">precision@5</dt>
            <dd data-testid="metric-precision-at-5">{precisionAt5 != null ? precisionAt5.toFixed(3) : '— (when the batch stops)'}</dd>
          </dl>
        </div>
        {roc && (
          <svg viewBox={`-30 -10 ${W + 40} ${W + 40}`} className="roc" role="img" aria-label={`ROC curve, AUC ${roc.auc.toFixed(3)}`} data-testid="roc-svg">
            <rect x={0} y={0} width={W} height={W} fill="none" stroke="#24324f" />
            <line x1={0} y1={W} x2={W} y2={0} stroke="#475569" strokeDasharray="4 4" />
            <path d={path} fill="none" stroke="#38bdf8" strokeWidth={2} />
            <circle cx={fprAt * W} cy={(1 - m.recall) * W} r={4} fill="#fbbf24" />
            <text x={W / 2} y={W + 24} textAnchor="middle" fill="#94a3b8" fontSize={11}>
              false-positive rate
            </text>
            <text x={-18} y={W / 2} textAnchor="middle" fill="#94a3b8" fontSize={11} transform={`rotate(-90 -18 ${W / 2})`}>
              true-positive rate
            </text>
            <text x={W - 4} y={W - 8} textAnchor="end" fill="#e2e8f0" fontSize={12}>
              AUC {roc.auc.toFixed(3)}
            </text>
          </svg>
        )}
      </div>
    </div>
  );
}
