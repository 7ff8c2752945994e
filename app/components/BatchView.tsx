import { useState } from 'react';
import { useAppStore, type BatchRow } from '../store';
import { batchOodFraction, confidenceAt, predictAt, type BatchLabels } from '../lib/batch/rows';
import { metadataFileName } from '../lib/batch/csv';
import { RasterThumb } from './RasterThumb';
import { WeightsBadge } from './WeightsBadge';
import { filesFromDataTransfer } from './dropped-files';

function BatchIngest() {
  const batchAdd = useAppStore((s) => s.batchAdd);
  const labels = useAppStore((s) => s.manifest?.models.find((m) => m.id === s.classifierId)?.labels);
  const add = async (files: File[]) => {
    const picked = files.map((f) => ({ name: f.name, path: f.webkitRelativePath || f.name, blob: f as Blob }));
    await batchAdd(picked);
  };
  return (
    <div
      className="dropzone"
      data-testid="batch-dropzone"
      onDragOver={(e) => e.preventDefault()}
      onDrop={async (e) => {
        e.preventDefault();
        // Folders are walked; files stay File references (read one chunk at a time by the batch run).
        const files = await filesFromDataTransfer(e.dataTransfer);
        await batchAdd(files.map((f) => ({ name: f.file.name, path: f.path, blob: f.file })));
      }}
    >
      <p>
        <strong>Batch:</strong> a folder (subfolders named {labels?.length ? labels.map((l) => `${l}/`).join(', ') : 'after the labels'} give the ground truth), many files, or a .zip
      </p>
      <div className="row">
        <label className="button">
          Choose folder
          <input
            type="file"
            multiple
            data-testid="batch-folder-input"
            ref={(el) => el?.setAttribute('webkitdirectory', '')}
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              await add(files);
            }}
          />
        </label>
        <label className="button">
          Choose files or .zip
          <input
            type="file"
            multiple
            accept=".png,.jpg,.jpeg,.dcm,.zip"
            data-testid="batch-file-input"
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              await add(files);
            }}
          />
        </label>
      </div>
    </div>
  );
}

function BatchProgress() {
  const b = useAppStore((s) => s.batch);
  const run = useAppStore((s) => s.batchRun);
  const cancel = useAppStore((s) => s.batchCancel);
  const clear = useAppStore((s) => s.batchClear);
  const csv = useAppStore((s) => s.batchCsv);
  const csvMetadata = useAppStore((s) => s.batchCsvMetadata);
  const total = b.rows.length;
  const done = b.rows.filter((r) => r.status !== 'pending').length;
  const errors = b.rows.filter((r) => r.status === 'error').length;
  if (!total) return null;
  // Running time only: a paused batch's clock stands still.
  const elapsed = (b.activeMs + (b.runStartedAt != null ? Date.now() - b.runStartedAt : 0)) / 1000;
  const pct = (100 * done) / total;
  const save = (text: string, type: string, name: string) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type }));
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };
  // The CSV and its sidecar: the one threshold all its classifier columns use, and where it came from.
  const download = () => {
    save(csv(), 'text/csv', 'labeled_dataset.csv');
    save(JSON.stringify(csvMetadata(), null, 2), 'application/json', metadataFileName('labeled_dataset.csv'));
  };
  return (
    <div className="panel">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <span data-testid="batch-progress-text">
          {done} / {total} processed{errors ? ` · ${errors} failed` : ''} · {elapsed.toFixed(0)} s{b.running ? '' : done < total ? ' · paused' : ' · finished'}
        </span>
        {!b.running && b.imagesPerSecond != null && (
          <span className="muted" data-testid="batch-throughput" title="images processed per second of running time (model loading included, paused time excluded)">
            {b.imagesPerSecond.toFixed(2)} images/s
          </span>
        )}
        <div className="row">
          {b.running ? (
            <button type="button" onClick={cancel} data-testid="batch-cancel">
              Cancel
            </button>
          ) : (
            done < total && (
              <button type="button" onClick={() => void run()} data-testid="batch-resume">
                Resume
              </button>
            )
          )}
          <button type="button" onClick={download} disabled={!done} data-testid="batch-export">
            Export labeled_dataset.csv
          </button>
          <span className="muted small" data-testid="batch-export-threshold">
            {b.labels.positive != null ? `at threshold ${b.threshold.toFixed(2)} (${b.thresholdSource})` : 'argmax (multi-class)'}
          </span>
          <button type="button" onClick={clear} disabled={b.running}>
            Clear
          </button>
        </div>
      </div>
      <div className="progress" role="progressbar" aria-label="Batch progress" aria-valuenow={Math.round(pct)} aria-valuemin={0} aria-valuemax={100}>
        <div style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}

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

function Metrics({ threshold, labels }: { threshold: number; labels: BatchLabels }) {
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

function SimilarCases({ rows }: { rows: BatchRow[] }) {
  const selected = useAppStore((s) => s.batch.selected);
  const similar = useAppStore((s) => s.batch.derived.similar);
  const row = rows.find((r) => r.index === selected);
  const byIndex = new Map(rows.map((r) => [r.index, r]));
  const lists = similar.map((l) => ({ title: l.title, items: l.items.flatMap((n) => (byIndex.has(n.index) ? [{ row: byIndex.get(n.index)!, sim: n.similarity }] : [])) }));
  if (!row) return <p className="muted small">Select a row to see its most similar cases.</p>;
  return (
    <div data-testid="similar-cases">
      <p className="small">
        Most similar to <strong>{row.imageId}</strong>
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

function PcaMap({ rows }: { rows: BatchRow[] }) {
  const [source, setSource] = useState<'classifierEmbedding' | 'clipEmbedding'>('classifierEmbedding');
  const select = useAppStore((s) => s.batchSelect);
  const selected = useAppStore((s) => s.batch.selected);
  const map = useAppStore((s) => s.batch.derived.pca[source]);
  const byIndex = new Map(rows.map((r) => [r.index, r]));
  const pts = map ? map.flatMap((p) => (byIndex.has(p.index) ? [{ row: byIndex.get(p.index)!, x: p.x, y: p.y }] : [])) : null;
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

function OodSummary() {
  const rows = useAppStore((s) => s.batch.rows);
  const f = batchOodFraction(rows);
  if (!f) return null;
  const badge = rows.find((r) => r.oodBadge)?.oodBadge;
  return (
    <span data-testid="batch-ood-summary" className={f.flagged ? 'badge badge-ood' : 'muted'} title={badge}>
      {f.flagged} / {f.scored} ({(100 * f.fraction).toFixed(1)}%) flagged out of distribution{f.flagged && badge ? `: ${badge}` : ''}
    </span>
  );
}

export function BatchView() {
  const b = useAppStore((s) => s.batch);
  const manifest = useAppStore((s) => s.manifest);
  const select = useAppStore((s) => s.batchSelect);
  const cls = manifest?.models.find((m) => m.id === b.classifierId);
  const clip = manifest?.models.find((m) => m.id === b.clipId);
  return (
    <div className="batch-layout">
      <div className="batch-main">
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
                  {b.rows.map((r) => (
                    <tr key={r.index} className={r.index === b.selected ? 'selected' : ''} onClick={() => select(r.index)} data-status={r.status}>
                      <td>{r.thumbnail && <RasterThumb raster={r.thumbnail} size={28} alt={r.imageId} />}</td>
                      <td className="ellipsis" title={r.imageId}>
                        {r.imageId}
                      </td>
                      <td>
                        {r.status === 'error' ? (
                          <span className="error-text">{r.error}</span>
                        ) : r.status === 'pending' ? (
                          '…'
                        ) : (
                          <>
                            {r.autoLabel ?? predictAt(r, b.threshold, b.labels)}{' '}
                            {(r.autoLabel ? clip : cls)?.weights === 'random-fixture' && (
                              <span className="tag tag-random" title="random weights: this label means nothing">
                                random weights
                              </span>
                            )}
                          </>
                        )}
                      </td>
                      <td>{r.groundTruth ?? ''}</td>
                      <td className="num">{r.autoConfidence != null ? r.autoConfidence.toFixed(3) : (confidenceAt(r, b.threshold, b.labels)?.toFixed(3) ?? '')}</td>
                      <td>{predictAt(r, b.threshold, b.labels) ?? ''}</td>
                      <td className="num">{(b.labels.positive != null ? r.classifierProbability : confidenceAt(r, b.threshold, b.labels))?.toFixed(4) ?? ''}</td>
                      <td data-testid="batch-ood">
                        {r.ood != null && r.oodScore != null && (
                          <span className={r.ood ? 'badge badge-ood' : 'muted small'} title={`${r.ood ? r.oodBadge + ' — ' : ''}OOD score ${r.oodScore.toFixed(1)}`}>
                            {r.ood ? 'out of distribution' : 'in range'}
                          </span>
                        )}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </div>
        )}
      </div>
      {b.rows.length > 0 && (
        <div className="batch-side">
          <section className="panel" aria-labelledby="met-h">
            <h2 id="met-h">Metrics (classifier)</h2>
            <Metrics threshold={b.threshold} labels={b.labels} />
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
