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
  // Only what this layout shows: a chunk's row updates re-render the parts that read rows, not the whole view.
  const hasRows = useAppStore((s) => s.batch.rows.length > 0);
  const classifierId = useAppStore((s) => s.batch.classifierId);
  const clipId = useAppStore((s) => s.batch.clipId);
  const threshold = useAppStore((s) => s.batch.threshold);
  const labels = useAppStore((s) => s.batch.labels);
  const manifest = useAppStore((s) => s.manifest);
  const restore = useAppStore((s) => s.batchRestore);
  const cls = manifest?.models.find((m) => m.id === classifierId);
  const clip = manifest?.models.find((m) => m.id === clipId);
  useEffect(() => {
    void restore();
  }, [restore]);
  return (
    <div className="batch-layout">
      <div className="batch-main">
        <ResumeOffer />
        <BatchIngest />
        <BatchProgress />
        {hasRows && (
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
      {hasRows && (
        <div className="batch-side">
          <section className="panel" aria-labelledby="met-h">
            <h2 id="met-h">Metrics (classifier)</h2>
            <BatchMetrics threshold={threshold} labels={labels} />
          </section>
          <section className="panel" aria-labelledby="sim-h">
            <h2 id="sim-h">Similar cases</h2>
            <SimilarCases />
          </section>
          <section className="panel" aria-labelledby="pca-h">
            <h2 id="pca-h">Embedding map (PCA)</h2>
            <PcaMap />
          </section>
        </div>
      )}
    </div>
  );
}
