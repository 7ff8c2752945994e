/**
 * Folder evaluation panel: drop or pick a folder in the cxr-lung-masks layout; Dice / IoU per lung, their
 * distribution, the images that failed (with the cause) and clickable worst cases with truth and prediction.
 * A folder dropped while one is being evaluated is refused by the store with a message.
 */
import { useEffect, useRef, useState } from 'react';
import { histogram01, LUNGS, useAppStore, worstCasesOf } from '../../store';
import { filesFromDataTransfer } from '../dropped-files';
import { drawOverlay, rasterCanvas } from './canvas-util';

function Histogram({ values, label }: { values: number[]; label: string }) {
  const h = histogram01(values, 20);
  const max = Math.max(1, ...h);
  return (
    <figure className="histogram" data-testid="segment-eval-hist">
      <svg viewBox="0 0 200 60" width="100%" role="img" aria-label={`${label} Dice distribution`}>
        {h.map((n, i) => (
          <rect key={i} x={i * 10 + 0.5} y={55 - (50 * n) / max} width={9} height={(50 * n) / max} fill="#60a5fa">
            <title>{`Dice ${(i / 20).toFixed(2)}–${((i + 1) / 20).toFixed(2)}: ${n}`}</title>
          </rect>
        ))}
        <line x1="0" y1="55.5" x2="200" y2="55.5" stroke="#888" />
      </svg>
      <figcaption className="small">{label}: Dice 0 → 1</figcaption>
    </figure>
  );
}

function EvalDetail() {
  const d = useAppStore((s) => s.sam.eval.detail);
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c || !d) return;
    c.width = d.raster.width;
    c.height = d.raster.height;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(rasterCanvas(d.raster), 0, 0);
    const o = document.createElement('canvas');
    drawOverlay(o, c.width, c.height, [
      { mask: d.truth, color: [34, 197, 94], alpha: 0.4 },
      { mask: d.pred, color: [239, 68, 68], alpha: 0.4 },
    ]);
    ctx.drawImage(o, 0, 0);
  }, [d]);
  if (!d) return null;
  return (
    <div data-testid="segment-eval-detail">
      <p className="small">
        {d.name} · {d.lung.replace('_', ' ')} · Dice {d.dice.toFixed(3)} · <span style={{ color: '#22c55e' }}>truth</span> /{' '}
        <span style={{ color: '#ef4444' }}>prediction</span>
      </p>
      <canvas ref={ref} className="eval-detail" />
    </div>
  );
}

export function SegmentEval() {
  const ev = useAppStore((s) => s.sam.eval);
  const run = useAppStore((s) => s.segmentEvalFolder);
  const show = useAppStore((s) => s.segmentEvalShow);
  const [prompt, setPrompt] = useState<'box' | 'center-click'>('box');
  const pick = async (files: { file: File; path: string }[]) => run(files.map((f) => ({ name: f.file.name, path: f.path, blob: f.file })), prompt);
  const worst = worstCasesOf(ev.rows, 8);
  return (
    <div
      className="panel"
      data-testid="segment-eval"
      onDragOver={(e) => e.preventDefault()}
      onDrop={async (e) => {
        e.preventDefault();
        await pick(await filesFromDataTransfer(e.dataTransfer));
      }}
    >
      <h2>Evaluate on a folder</h2>
      <p className="small muted">Drop a folder laid out like cxr-lung-masks (images/, masks/*_mask.png, boxes.json): Dice and IoU per lung.</p>
      <div className="row wrap">
        <select value={prompt} onChange={(e) => setPrompt(e.target.value as 'box' | 'center-click')} data-testid="segment-eval-prompt">
          <option value="box">box prompts</option>
          <option value="center-click">one click at the box centre</option>
        </select>
        <label className="button" aria-disabled={ev.running}>
          Choose folder
          <input
            type="file"
            multiple
            data-testid="segment-eval-input"
            disabled={ev.running}
            ref={(el) => el?.setAttribute('webkitdirectory', '')}
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
              e.target.value = '';
              await pick(files);
            }}
          />
        </label>
      </div>
      {ev.error && <p className="error-text">{ev.error}</p>}
      {ev.failed.length > 0 && (
        <details className="small" data-testid="segment-eval-failed">
          <summary>
            {ev.failed.length} image{ev.failed.length > 1 ? 's' : ''} could not be evaluated
          </summary>
          <ul>
            {ev.failed.map((f) => (
              <li key={f.image}>
                {f.image}: {f.message}
              </li>
            ))}
          </ul>
        </details>
      )}
      {(ev.running || ev.rows.length > 0) && (
        <p className="small" data-testid="segment-eval-progress">
          {ev.rows.length + ev.failed.length} / {ev.total} images{ev.running ? '…' : ''}
        </p>
      )}
      {ev.summary && (
        <table className="small" data-testid="segment-eval-summary">
          <thead>
            <tr>
              <th>lung</th>
              <th>mean Dice</th>
              <th>median</th>
              <th>p10</th>
              <th>mean IoU</th>
            </tr>
          </thead>
          <tbody>
            {LUNGS.map((l) => (
              <tr key={l}>
                <td>{l.replace('_', ' ')}</td>
                <td>{ev.summary!.per_lung[l].dice.mean.toFixed(3)}</td>
                <td>{ev.summary!.per_lung[l].dice.median.toFixed(3)}</td>
                <td>{ev.summary!.per_lung[l].dice.p10.toFixed(3)}</td>
                <td>{ev.summary!.per_lung[l].iou.mean.toFixed(3)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {ev.rows.length > 0 && (
        <div className="row wrap">
          {LUNGS.map((l) => (
            <Histogram key={l} label={l.replace('_', ' ')} values={ev.rows.map((r) => r.lungs[l].dice)} />
          ))}
        </div>
      )}
      {worst.length > 0 && !ev.running && (
        <>
          <h3>Worst cases</h3>
          <ol className="small">
            {worst.map((w) => (
              <li key={`${w.row.image}-${w.lung}`}>
                <button type="button" className="link" onClick={() => void show(w.row.image, w.lung)} data-testid="segment-eval-worst">
                  {w.row.image} · {w.lung.replace('_', ' ')} · Dice {w.dice.toFixed(3)}
                </button>
              </li>
            ))}
          </ol>
        </>
      )}
      <EvalDetail />
    </div>
  );
}

