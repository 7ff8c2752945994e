/** The selected row's most similar cases (by each embedding) and the 2-D PCA map of the embeddings. */
import { useMemo, useState } from 'react';
import { useAppStore, type BatchRow } from '../store';
import { FileName } from './FileName';
import { RasterThumb } from './RasterThumb';

/**
 * The rows as they were when `derived` was made (read then, not subscribed to): the side panels re-render when their
 * derived data changes (at most once a second while a batch runs), not on every chunk. A row's index is its position
 * (rows are only appended, and cleared all at once), and a finished row does not change afterwards.
 */
function useRowsOf(derived: unknown): BatchRow[] {
  return useMemo(() => useAppStore.getState().batch.rows, [derived]);
}

export function SimilarCases() {
  const selected = useAppStore((s) => s.batch.selected);
  const similar = useAppStore((s) => s.batch.derived.similar);
  const rows = useRowsOf(similar);
  const row = selected != null ? rows[selected] : undefined;
  // A row's index is its position (rows are only appended, and cleared all at once).
  const lists = similar.map((l) => ({ title: l.title, items: l.items.flatMap((n) => (rows[n.index] ? [{ row: rows[n.index], sim: n.similarity }] : [])) }));
  if (!row) return <p className="muted small">Select a row to see its most similar cases.</p>;
  return (
    <div data-testid="similar-cases">
      <p className="small">
        Most similar to <strong data-testid="similar-query">{row.imageId}</strong>
      </p>
      {lists.length === 0 && <p className="muted small">No embeddings for this image.</p>}
      {lists.map((l) => (
        <div key={l.title}>
          <h3 className="small muted">by {l.title}</h3>
          <div className="similar-row">
            {l.items.map(({ row: r, sim }) => (
              <figure key={r.index} className="similar">
                {r.thumbnail && <RasterThumb raster={r.thumbnail} size={72} alt={r.imageId} />}
                <figcaption className="small">
                  <FileName name={r.imageId.split('/').pop()!} title={r.imageId} />
                  <br />
                  {r.groundTruth ?? r.autoLabel ?? '?'} · {sim.toFixed(3)}
                </figcaption>
              </figure>
            ))}
          </div>
        </div>
      ))}
    </div>
  );
}

/** One colour per label, in manifest order (the first two as before: NORMAL green, PNEUMONIA amber). */
const PALETTE = ['#34d399', '#fbbf24', '#60a5fa', '#f472b6', '#a78bfa', '#f87171', '#2dd4bf', '#facc15'];

export function PcaMap() {
  const [source, setSource] = useState<'classifierEmbedding' | 'clipEmbedding'>('classifierEmbedding');
  const select = useAppStore((s) => s.batchSelect);
  const selected = useAppStore((s) => s.batch.selected);
  const map = useAppStore((s) => s.batch.derived.pca[source]);
  const rows = useRowsOf(map);
  const pts = map ? map.flatMap((p) => (rows[p.index] ? [{ row: rows[p.index], x: p.x, y: p.y }] : [])) : null;
  const labels = useAppStore((s) => s.batch.labels.labels);
  const color = (r: BatchRow) => {
    const i = labels.indexOf(r.groundTruth ?? r.autoLabel ?? r.classifierPrediction ?? '');
    return i >= 0 ? PALETTE[i % PALETTE.length] : '#94a3b8';
  };
  const S = 260;
  return (
    <div>
      <div className="row small">
        <label>
          <input type="radio" checked={source === 'classifierEmbedding'} onChange={() => setSource('classifierEmbedding')} /> classifier
        </label>
        <label>
          <input type="radio" checked={source === 'clipEmbedding'} onChange={() => setSource('clipEmbedding')} /> CLIP
        </label>
        <span className="muted">
          colour: ground truth (else label)
          {labels.map((l, i) => (
            <span key={l} style={{ color: PALETTE[i % PALETTE.length] }}>
              {' '}
              · {l}
            </span>
          ))}
        </span>
      </div>
      {!pts ? (
        <p className="muted small">The map needs at least 3 embedded images.</p>
      ) : (
        <svg viewBox={`-8 -8 ${S + 16} ${S + 16}`} className="pca" role="img" aria-label="2-D PCA map of the embeddings" data-testid="pca-svg">
          <rect x={-8} y={-8} width={S + 16} height={S + 16} fill="#0b1120" stroke="#24324f" />
          {pts.map((p) => (
            <circle
              key={p.row.index}
              cx={p.x * S}
              cy={(1 - p.y) * S}
              r={p.row.index === selected ? 6 : 3.5}
              fill={color(p.row)}
              stroke={p.row.index === selected ? '#fff' : 'none'}
              opacity={0.85}
              onClick={() => select(p.row.index)}
            >
              <title>{`${p.row.imageId} · ${p.row.groundTruth ?? '?'}`}</title>
            </circle>
          ))}
        </svg>
      )}
    </div>
  );
}
