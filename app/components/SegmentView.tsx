import { useEffect, useMemo, useRef, useState } from 'react';
import { histogram01, layerMask, LUNGS, segmentEntry, useAppStore, worstCasesOf, type SegLayer } from '../store';
import type { Box } from '../lib/segment';
import type { Raster } from '../lib/imaging/raster';
import { DropZone } from './DropZone';
import { filesFromDataTransfer } from './dropped-files';
import { ImageStrip } from './ImageStrip';
import { WeightsBadge } from './WeightsBadge';
import { DownloadProgressBar } from './ModelManager';

function saveFiles(files: { name: string; blob: Blob }[]) {
  for (const f of files) {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(f.blob);
    a.download = f.name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }
}

function rasterCanvas(r: Raster): HTMLCanvasElement {
  const c = document.createElement('canvas');
  c.width = r.width;
  c.height = r.height;
  c.getContext('2d')!.putImageData(new ImageData(new Uint8ClampedArray(r.data), r.width, r.height), 0, 0);
  return c;
}

/** Masks → one RGBA overlay at the image's size. */
function paintMasks(ctx: CanvasRenderingContext2D, w: number, h: number, layers: { mask: Uint8Array; color: [number, number, number]; alpha: number }[]) {
  const img = ctx.createImageData(w, h);
  const d = img.data;
  for (const { mask, color, alpha } of layers) {
    const a = Math.round(alpha * 255);
    for (let i = 0, j = 0; i < mask.length; i++, j += 4) {
      if (!mask[i]) continue;
      d[j] = color[0];
      d[j + 1] = color[1];
      d[j + 2] = color[2];
      d[j + 3] = Math.max(d[j + 3], a);
    }
  }
  ctx.putImageData(img, 0, 0);
}

function SegmentCanvas() {
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const st = useAppStore((s) => (s.currentId ? s.segment.byImage[s.currentId] : undefined));
  const seg = useAppStore((s) => s.segment);
  const click = useAppStore((s) => s.segmentClick);
  const boxAction = useAppStore((s) => s.segmentBox);
  const hover = useAppStore((s) => s.segmentHover);
  const hoverEnd = useAppStore((s) => s.segmentHoverEnd);
  const imgRef = useRef<HTMLCanvasElement>(null);
  const overRef = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; y: number; moved: boolean } | null>(null);
  const [dragBox, setDragBox] = useState<Box | null>(null);
  const base = useMemo(() => (item ? rasterCanvas(item.raster) : null), [item?.raster]);

  useEffect(() => {
    const c = imgRef.current;
    if (!c || !base) return;
    c.width = base.width;
    c.height = base.height;
    c.getContext('2d')!.drawImage(base, 0, 0);
  }, [base]);

  const layers = st?.history.present ?? [];
  useEffect(() => {
    const c = overRef.current;
    if (!c || !item) return;
    const { width: w, height: h } = item.raster;
    c.width = w;
    c.height = h;
    const ctx = c.getContext('2d')!;
    const ms = layers.filter((l) => layerMask(l)).map((l) => ({ mask: layerMask(l)!, color: l.color, alpha: seg.opacity }));
    if (seg.preview && seg.preview.imageId === item.id) ms.push({ mask: seg.preview.mask, color: [250, 204, 21], alpha: Math.min(0.6, seg.opacity * 0.9) });
    paintMasks(ctx, w, h, ms);
    const r = Math.max(3, Math.round(Math.max(w, h) / 150));
    ctx.lineWidth = Math.max(1, r / 2);
    for (const l of layers) {
      const active = l.id === st?.activeLayer;
      if (l.box) {
        ctx.strokeStyle = `rgb(${l.color.join(',')})`;
        ctx.setLineDash(active ? [] : [r, r]);
        ctx.strokeRect(l.box[0], l.box[1], l.box[2] - l.box[0], l.box[3] - l.box[1]);
        ctx.setLineDash([]);
      }
      if (!active) continue;
      for (const p of l.points) {
        ctx.fillStyle = p.label ? '#22c55e' : '#ef4444';
        ctx.beginPath();
        ctx.arc(p.x, p.y, r, 0, 2 * Math.PI);
        ctx.fill();
        ctx.strokeStyle = '#000';
        ctx.stroke();
      }
    }
    if (dragBox) {
      ctx.strokeStyle = '#facc15';
      ctx.strokeRect(dragBox[0], dragBox[1], dragBox[2] - dragBox[0], dragBox[3] - dragBox[1]);
    }
  }, [item, layers, seg.preview, seg.opacity, dragBox, st?.activeLayer]);

  if (!item) return <div className="viewer panel muted" data-testid="segment-empty">Open an X-ray to segment it.</div>;

  const toImage = (e: React.PointerEvent | React.MouseEvent): [number, number] => {
    const rect = overRef.current!.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * item.raster.width) / rect.width;
    const y = ((e.clientY - rect.top) * item.raster.height) / rect.height;
    return [Math.min(Math.max(x, 0), item.raster.width), Math.min(Math.max(y, 0), item.raster.height)];
  };
  const minDrag = Math.max(4, item.raster.width / 100);

  return (
    <div className="viewer panel segment-canvas">
      <div className="segment-stack" style={{ width: `min(100%, calc((100vh - 190px) * ${item.raster.width / item.raster.height}))` }}>
        <canvas ref={imgRef} className="segment-image" data-testid="segment-image" />
        <canvas
          ref={overRef}
          className="segment-overlay"
          data-testid="segment-overlay"
          onContextMenu={(e) => {
            e.preventDefault();
            const [x, y] = toImage(e);
            void click(x, y, 0);
          }}
          onPointerDown={(e) => {
            if (e.button !== 0) return;
            const [x, y] = toImage(e);
            drag.current = { x, y, moved: false };
            (e.target as Element).setPointerCapture?.(e.pointerId);
          }}
          onPointerMove={(e) => {
            const [x, y] = toImage(e);
            const d = drag.current;
            if (d) {
              if (Math.hypot(x - d.x, y - d.y) > minDrag || seg.tool === 'box') {
                d.moved = true;
                setDragBox([Math.min(d.x, x), Math.min(d.y, y), Math.max(d.x, x), Math.max(d.y, y)]);
              }
              return;
            }
            hover(x, y);
          }}
          onPointerLeave={() => hoverEnd()}
          onPointerUp={(e) => {
            const d = drag.current;
            drag.current = null;
            if (!d) return;
            const [x, y] = toImage(e);
            setDragBox(null);
            if (d.moved && Math.hypot(x - d.x, y - d.y) > minDrag) void boxAction([d.x, d.y, x, y]);
            else if (seg.tool === 'click') void click(x, y, e.shiftKey || e.altKey ? 0 : 1);
          }}
        />
      </div>
      <p className="muted small">
        Click: positive point · Shift+click or right-click: negative point · drag: box · hover: preview
      </p>
    </div>
  );
}

function LayerRow({ l, active }: { l: SegLayer; active: boolean }) {
  const setActive = useAppStore((s) => s.segmentSetActiveLayer);
  const rename = useAppStore((s) => s.segmentRenameLayer);
  const m = layerMask(l);
  const area = m ? m.reduce((a, b) => a + b, 0) : 0;
  return (
    <li className={active ? 'active' : ''} data-testid="segment-layer">
      <span className="swatch" style={{ background: `rgb(${l.color.join(',')})` }} />
      <input aria-label="mask label" value={l.label} onChange={(e) => rename(l.id, e.target.value)} onFocus={() => setActive(l.id)} />
      <button type="button" onClick={() => setActive(l.id)} aria-pressed={active}>
        {active ? 'editing' : 'edit'}
      </button>
      <span className="small muted" data-testid="segment-layer-area">
        {m ? `${area} px` : 'empty'}
      </span>
    </li>
  );
}

function SegmentPanel() {
  const manifest = useAppStore((s) => s.manifest);
  const seg = useAppStore((s) => s.segment);
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const st = useAppStore((s) => (s.currentId ? s.segment.byImage[s.currentId] : undefined));
  const a = useAppStore.getState();
  const setModel = useAppStore((s) => s.segmentSetModel);
  const prepare = useAppStore((s) => s.segmentPrepare);
  const currentId = useAppStore((s) => s.currentId);
  const sams = manifest?.models.filter((m) => m.family === 'sam') ?? [];
  // the chosen model, else the default (the project's trained lung-sam when the manifest has it)
  const entry = useAppStore((s) => segmentEntry(s));
  useEffect(() => {
    if (currentId && entry) void prepare();
  }, [currentId, entry?.id, prepare]);
  const active = st?.history.present.find((l) => l.id === st.activeLayer);

  return (
    <div className="panel" data-testid="segment-panel">
      <h2>Segment</h2>
      <label>
        Model{' '}
        <select data-testid="segment-model" value={entry?.id ?? ''} onChange={(e) => void setModel(e.target.value)}>
          {sams.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </select>
      </label>
      {entry && <WeightsBadge weights={entry.weights} />}
      <p className="small" data-testid="segment-status">
        {seg.loading
          ? `loading model: ${seg.loadMessage ?? ''}`
          : seg.loadError
            ? ''
            : seg.info
              ? `${seg.info.layout} layout on ${seg.info.report.backend}${seg.info.report.fellBack ? ' (WebGPU failed)' : ''}`
              : ''}
      </p>
      {seg.loadError && (
        <p className="error-text" data-testid="segment-error" role="alert">
          {seg.loadError}
        </p>
      )}
      {item && st && (
        <p className="small" data-testid="segment-embedding">
          {st.encoding
            ? 'encoding image…'
            : st.key
              ? st.from === 'encoder'
                ? `embedding computed (${Math.round(st.encodeMs ?? 0)} ms)`
                : `embedding from cache (${st.from === 'indexeddb' ? 'IndexedDB' : 'memory'})`
              : st.error ?? ''}
          {st.key && st.resident === 'gpu' && <span data-testid="segment-resident"> · resident on the GPU</span>}
          {st.decodeMs !== undefined && <span data-testid="segment-decode-ms"> · last decode {st.decodeMs.toFixed(1)} ms</span>}
        </p>
      )}
      <div className="row wrap">
        <button type="button" aria-pressed={seg.tool === 'click'} onClick={() => a.segmentSet({ tool: 'click' })}>
          Clicks
        </button>
        <button type="button" aria-pressed={seg.tool === 'box'} onClick={() => a.segmentSet({ tool: 'box' })} disabled={seg.info ? !seg.info.supportsBox : false}>
          Box
        </button>
        <button type="button" onClick={() => a.segmentUndo()} disabled={!st?.history.past.length} data-testid="segment-undo">
          Undo
        </button>
        <button type="button" onClick={() => a.segmentRedo()} disabled={!st?.history.future.length} data-testid="segment-redo">
          Redo
        </button>
        <button type="button" onClick={() => a.segmentClear()} disabled={!active?.masks} data-testid="segment-clear">
          Clear
        </button>
      </div>
      <label className="row small">
        <input type="checkbox" checked={seg.refine} onChange={(e) => a.segmentSet({ refine: e.target.checked })} disabled={seg.info ? !seg.info.supportsMaskInput : false} />
        refine with the previous mask
      </label>
      <label className="row small">
        <input type="checkbox" checked={seg.hoverPreview} onChange={(e) => a.segmentSet({ hoverPreview: e.target.checked })} data-testid="segment-hover-toggle" />
        hover preview <span className="muted" data-testid="segment-hover-decodes">({seg.hoverDecodes} decodes)</span>
      </label>
      <label className="row small">
        overlay opacity
        <input type="range" min={0} max={1} step={0.05} value={seg.opacity} onChange={(e) => a.segmentSet({ opacity: Number(e.target.value) })} data-testid="segment-opacity" />
      </label>
      {active?.iou && (
        <div data-testid="segment-candidates">
          <h3>Masks (predicted IoU)</h3>
          <ol className="candidates">
            {active.iou.map((v, i) => (
              <li key={i}>
                <button type="button" aria-pressed={i === active.selected} onClick={() => a.segmentSelectCandidate(i)} data-testid="segment-candidate">
                  #{i + 1}: {v.toFixed(3)}
                  {i === active.selected ? ' ✓' : ''}
                </button>
              </li>
            ))}
          </ol>
        </div>
      )}
      {st && (
        <>
          <h3>Labelled masks</h3>
          <ul className="layers">
            {st.history.present.map((l) => (
              <LayerRow key={l.id} l={l} active={l.id === st.activeLayer} />
            ))}
          </ul>
          <button type="button" onClick={() => a.segmentAddLayer()} data-testid="segment-add-layer">
            + new mask
          </button>
          <h3>Export</h3>
          <div className="row wrap">
            <button type="button" onClick={() => saveFiles(a.segmentExport('png'))} data-testid="segment-export-png">
              PNG
            </button>
            <button type="button" onClick={() => saveFiles(a.segmentExport('polygons'))} data-testid="segment-export-polygons">
              Polygons JSON
            </button>
            {item?.dicom && (
              <button type="button" onClick={() => saveFiles(a.segmentExport('dicom-seg'))} data-testid="segment-export-seg">
                DICOM SEG
              </button>
            )}
          </div>
        </>
      )}
    </div>
  );
}

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
  const d = useAppStore((s) => s.segment.eval.detail);
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const c = ref.current;
    if (!c || !d) return;
    c.width = d.raster.width;
    c.height = d.raster.height;
    const ctx = c.getContext('2d')!;
    ctx.drawImage(rasterCanvas(d.raster), 0, 0);
    const o = document.createElement('canvas');
    o.width = c.width;
    o.height = c.height;
    paintMasks(o.getContext('2d')!, c.width, c.height, [
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

function SegmentEval() {
  const ev = useAppStore((s) => s.segment.eval);
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
        <label className="button">
          Choose folder
          <input
            type="file"
            multiple
            data-testid="segment-eval-input"
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
      {(ev.running || ev.rows.length > 0) && (
        <p className="small" data-testid="segment-eval-progress">
          {ev.rows.length} / {ev.total} images{ev.running ? '…' : ''}
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

export function SegmentView() {
  return (
    <div className="viewer-layout segment-layout">
      <div className="left">
        <DropZone />
        <ImageStrip />
      </div>
      <div className="segment-center">
        <SegmentCanvas />
        <SegmentEval />
      </div>
      <div className="right">
        <DownloadProgressBar />
        <SegmentPanel />
      </div>
    </div>
  );
}
