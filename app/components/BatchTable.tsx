/**
 * The batch table. Each finished row's cells are the labeled_dataset.csv row the export writes for it
 * (batch.derived.cells, made by the store once per chunk and threshold change with the CSV's own code), so the
 * table and the file always agree and nothing is computed while rendering.
 */
import { useAppStore } from '../store';
import { FileName } from './FileName';
import { RasterThumb } from './RasterThumb';

export function OodSummary() {
  const { ood: f, oodBadge: badge } = useAppStore((s) => s.batch.derived.counts);
  if (!f) return null;
  return (
    <span data-testid="batch-ood-summary" className={f.flagged ? 'badge badge-ood' : 'muted'} title={badge}>
      {f.flagged} / {f.scored} ({(100 * f.fraction).toFixed(1)}%) flagged out of distribution{f.flagged && badge ? `: ${badge}` : ''}
    </span>
  );
}

const num = (x: number | null | undefined, d: number) => (x != null && Number.isFinite(x) ? x.toFixed(d) : '');

export function BatchTable() {
  const b = useAppStore((s) => s.batch);
  const manifest = useAppStore((s) => s.manifest);
  const select = useAppStore((s) => s.batchSelect);
  const cls = manifest?.models.find((m) => m.id === b.classifierId);
  const clip = manifest?.models.find((m) => m.id === b.clipId);
  const cells = b.derived.cells;
  return (
    <div className="table-scroll">
      <table className="data-table" data-testid="batch-table">
        <thead>
          <tr>
            <th />
            <th>image_id</th>
            <th>auto_label</th>
            <th>ground_truth</th>
            <th className="num">confidence_score</th>
            <th>classifier</th>
            <th className="num">{b.labels.positive != null ? `P(${b.labels.positive})` : 'P(predicted)'}</th>
            <th title="out-of-distribution check of the classifier">OOD</th>
          </tr>
        </thead>
        <tbody>
          {b.rows.map((r) => {
            const c = cells[r.index];
            return (
              <tr key={r.index} className={r.index === b.selected ? 'selected' : ''} onClick={() => select(r.index)} data-status={r.status}>
                <td>{r.thumbnail && <RasterThumb raster={r.thumbnail} size={28} alt={r.imageId} />}</td>
                <td className="ellipsis" title={r.imageId}>
                  <FileName name={r.imageId} />
                </td>
                <td>
                  {r.status === 'error' ? (
                    <span className="error-text">{r.error}</span>
                  ) : !c ? (
                    '…'
                  ) : (
                    <>
                      {c.auto_label}{' '}
                      {(r.autoLabel != null ? clip : cls)?.weights === 'random-fixture' && (
                        <span className="tag tag-random" title="random weights: this label means nothing">
                          random weights
                        </span>
                      )}
                    </>
                  )}
                </td>
                <td>{r.groundTruth ?? ''}</td>
                <td className="num">{num(c?.confidence_score, 3)}</td>
                <td>{c?.classifier_prediction ?? ''}</td>
                <td className="num">{num(c?.classifier_probability, 4)}</td>
                <td data-testid="batch-ood">
                  {r.ood != null && r.oodScore != null && (
                    <span className={r.ood ? 'badge badge-ood' : 'muted small'} title={`${r.ood ? r.oodBadge + ' — ' : ''}OOD score ${r.oodScore.toFixed(1)}`}>
                      {r.ood ? 'out of distribution' : 'in range'}
                    </span>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}
