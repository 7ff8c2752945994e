/**
 * The batch table. Each finished row's cells are the labeled_dataset.csv row the export writes for it
 * (batch.derived.cells, made by the store once per chunk and threshold change with the CSV's own code), so the
 * table and the file always agree and nothing is computed while rendering.
 */
import { memo } from 'react';
import type { LabeledRow } from '../lib/batch';
import { useAppStore, type BatchRow } from '../store';
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

type Model = { weights?: string } | undefined;

/**
 * One row of the table. Memoised: a chunk's update gives new objects only to its own rows and cells (the store keeps
 * the others' references), so a running batch re-renders 16 rows per chunk, not the whole table.
 */
const BatchTableRow = memo(function BatchTableRow({ r, c, selected, cls, clip, select }: { r: BatchRow; c: LabeledRow | undefined; selected: boolean; cls: Model; clip: Model; select: (i: number) => void }) {
  return (
    <tr className={selected ? 'selected' : ''} onClick={() => select(r.index)} data-status={r.status}>
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
});

export function BatchTable() {
  const rows = useAppStore((s) => s.batch.rows);
  const cells = useAppStore((s) => s.batch.derived.cells);
  const selected = useAppStore((s) => s.batch.selected);
  const positive = useAppStore((s) => s.batch.labels.positive);
  const classifierId = useAppStore((s) => s.batch.classifierId);
  const clipId = useAppStore((s) => s.batch.clipId);
  const manifest = useAppStore((s) => s.manifest);
  const select = useAppStore((s) => s.batchSelect);
  const cls = manifest?.models.find((m) => m.id === classifierId);
  const clip = manifest?.models.find((m) => m.id === clipId);
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
            <th className="num">{positive != null ? `P(${positive})` : 'P(predicted)'}</th>
            <th title="out-of-distribution check of the classifier">OOD</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <BatchTableRow key={r.index} r={r} c={cells[r.index]} selected={r.index === selected} cls={cls} clip={clip} select={select} />
          ))}
        </tbody>
      </table>
    </div>
  );
}
