/**
 * Batch mode: inputs and progress (BatchControls), the table (BatchTable), metrics (BatchMetrics), similar cases
 * and the embedding map (BatchSimilar). A batch stopped by a reload or a crash is restored from the journal when the
 * view opens, with an offer to resume it.
 */
import { useEffect } from 'react';
import { useAppStore } from '../store';
import { BatchIngest, BatchProgress } from './BatchControls';
import { BatchMetrics } from './BatchMetrics';
import { PcaMap, SimilarCases } from './BatchSimilar';
import { BatchTable, OodSummary } from './BatchTable';
import { WeightsBadge } from './WeightsBadge';

/** Shown when a restored batch has rows whose files must be chosen again. */
function ResumeOffer() {
  const b = useAppStore((s) => s.batch);
  const clear = useAppStore((s) => s.batchClear);
  if (!b.awaitingFiles || b.running) return null;
  const done = b.derived.counts.processed;
  return (
    <div className="panel notice" role="status" data-testid="batch-resume-offer">
      <p>
        This batch stopped at {done} / {b.rows.length} (the page was reloaded or closed). Its finished rows are kept. To label the{' '}
        {b.awaitingFiles} remaining images, choose the same folder, files or .zip again: only those run.
      </p>
      <button type="button" onClick={clear} data-testid="batch-discard">
        Discard this batch
      </button>
    </div>
  );
}

export function BatchView() {
  const b = useAppStore((s) => s.batch);
  const manifest = useAppStore((s) => s.manifest);
  const restore = useAppStore((s) => s.batchRestore);
  const cls = manifest?.models.find((m) => m.id === b.classifierId);
  const clip = manifest?.models.find((m) => m.id === b.clipId);
  useEffect(() => {
    void restore();
  }, [restore]);
  return (
    <div className="batch-layout">
      <div className="batch-main">
        <ResumeOffer />
        <BatchIngest />
        <BatchProgress />
        {b.rows.length > 0 && (
          <div className="panel">
            <div className="row small" style={{ marginBottom: '0.4rem' }}>
              {cls && (
                <span>
                  classifier: {cls.name} <WeightsBadge weights={cls.weights} />
                </span>
              )}
              {clip && (
                <span>
                  auto_label (zero-shot): {clip.name} <WeightsBadge weights={clip.weights} />
                </span>
              )}
              <OodSummary />
            </div>
            <BatchTable />
          </div>
        )}
      </div>
      {b.rows.length > 0 && (
        <div className="batch-side">
          <section className="panel" aria-labelledby="met-h">
            <h2 id="met-h">Metrics (classifier)</h2>
            <BatchMetrics threshold={b.threshold} labels={b.labels} />
          </section>
          <section className="panel" aria-labelledby="sim-h">
            <h2 id="sim-h">Similar cases</h2>
            <SimilarCases rows={b.rows} />
          </section>
          <section className="panel" aria-labelledby="pca-h">
            <h2 id="pca-h">Embedding map (PCA)</h2>
            <PcaMap rows={b.rows} />
          </section>
        </div>
      )}
    </div>
  );
}
