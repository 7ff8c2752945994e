import { useEffect, useMemo, useRef, useState } from 'react';
import { shownClassification, shownOcclusion, useAppStore, type ImageItem } from '../store';
import { applyWindow, presetOf, renderGray } from '../lib/imaging/windowing';
import type { DicomImage, DicomWindow } from '../lib/imaging/dicom';
import type { Heatmap } from '../lib/classifier/types';
import { heatmapToRGBA } from '../lib/classifier';

/** 8-bit images are windowed on their gray values; this is the identity window for them. */
const IDENTITY_WINDOW: DicomWindow = { center: 128, width: 256 };

/** The linear window the sliders start from: the preset's, or (VOI LUT presets) the file's first window. */
function presetWindow(d: DicomImage, presetId: string | undefined): DicomWindow {
  const p = presetOf(d, presetId);
  return p.kind === 'window' ? { center: p.center, width: p.width } : d.window;
}

function windowedCanvas(item: ImageItem, win: DicomWindow | undefined, presetId: string | undefined): HTMLCanvasElement {
  const { width, height } = item.raster;
  const c = document.createElement('canvas');
  c.width = width;
  c.height = height;
  const ctx = c.getContext('2d')!;
  const img = ctx.createImageData(width, height);
  if (item.dicom && !item.dicom.rgb) {
    // The same rendering as the model input (lib/imaging/windowing): a dragged window, else the chosen preset.
    const gray = renderGray(item.dicom, win ? { window: win } : { presetId });
    for (let i = 0, j = 0; i < gray.length; i++, j += 4) {
      img.data[j] = img.data[j + 1] = img.data[j + 2] = gray[i];
      img.data[j + 3] = 255;
    }
  } else if (win && (win.center !== IDENTITY_WINDOW.center || win.width !== IDENTITY_WINDOW.width)) {
    const lut = applyWindow(Uint8Array.from({ length: 256 }, (_, v) => v), win);
    const s = item.raster.data;
    for (let j = 0; j < s.length; j += 4) {
      img.data[j] = lut[s[j]];
      img.data[j + 1] = lut[s[j + 1]];
      img.data[j + 2] = lut[s[j + 2]];
      img.data[j + 3] = 255;
    }
  } else {
    img.data.set(item.raster.data);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

/**
 * Rollout relevance → overlay canvas. Stretched to the image's own min..max: the rollout of a ViT is dominated by the
 * residual identity, so raw values sit in a narrow band near 1 and would paint everything the same colour.
 */
function heatmapCanvas(h: Heatmap): HTMLCanvasElement {
  let min = Infinity;
  let max = -Infinity;
  for (const v of h.data) {
    min = Math.min(min, v);
    max = Math.max(max, v);
  }
  const span = max - min;
  const grid = Float32Array.from(h.data, (v) => (span > 1e-6 * Math.max(1, Math.abs(max)) ? (v - min) / span : 0));
  const scale = 16;
  const w = h.width * scale;
  const ht = h.height * scale;
  const c = document.createElement('canvas');
  c.width = w;
  c.height = ht;
  const rgba = heatmapToRGBA(grid, h.width, h.height, w, ht, { colormap: 'jet', opacity: 1, alphaMode: 'value' });
  const img = new ImageData(new Uint8ClampedArray(rgba), w, ht);
  c.getContext('2d')!.putImageData(img, 0, 0);
  return c;
}

export function Viewer() {
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const viewer = useAppStore((s) => s.viewer);
  const setViewer = useAppStore((s) => s.setViewer);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; y: number; mode: 'pan' | 'window'; start: typeof viewer } | null>(null);

  const win = viewer.window ?? (item?.dicom ? presetWindow(item.dicom, viewer.presetId) : IDENTITY_WINDOW);
  const imageCanvas = useMemo(
    () => (item ? windowedCanvas(item, viewer.window, viewer.presetId) : null),
    [item?.raster, item?.dicom, viewer.window?.center, viewer.window?.width, viewer.presetId],
  );
  const selectFrame = useAppStore((s) => s.selectFrame);
  const dicom = item?.dicom;
  const activePreset = dicom && !dicom.rgb ? presetOf(dicom, viewer.presetId) : undefined;
  const method = useAppStore((st) => st.heatmapMethod);
  // Only maps computed for this image, frame, model and variant (resultKey): never the previous frame's or model's.
  const occ = useAppStore(shownOcclusion);
  const classification = useAppStore(shownClassification);
  const heat = method === 'occlusion' ? (classification ? occ?.heatmap : undefined) : classification?.heatmap;
  const heatCanvas = useMemo(() => (heat ? heatmapCanvas(heat) : null), [heat]);

  // Redraw when the canvas box changes size (window resize, alerts appearing above).
  const [box, setBox] = useState({ w: 0, h: 0 });
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const ro = new ResizeObserver(([e]) => setBox({ w: e.contentRect.width, h: e.contentRect.height }));
    ro.observe(canvas);
    return () => ro.disconnect();
  }, []);

  // Wheel zoom needs a non-passive listener (React's is passive), or the page scrolls along.
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const onWheel = (e: WheelEvent) => {
      e.preventDefault();
      const { zoom } = useAppStore.getState().viewer;
      setViewer({ zoom: Math.min(20, Math.max(0.2, zoom * Math.exp(-e.deltaY / 500))) });
    };
    canvas.addEventListener('wheel', onWheel, { passive: false });
    return () => canvas.removeEventListener('wheel', onWheel);
  }, [setViewer]);

  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.max(1, Math.round(rect.width * dpr));
    canvas.height = Math.max(1, Math.round(rect.height * dpr));
    const ctx = canvas.getContext('2d')!;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!imageCanvas) return;
    const fit = Math.min(canvas.width / imageCanvas.width, canvas.height / imageCanvas.height);
    const scale = fit * viewer.zoom;
    const w = imageCanvas.width * scale;
    const h = imageCanvas.height * scale;
    const x = (canvas.width - w) / 2 + viewer.panX * dpr;
    const y = (canvas.height - h) / 2 + viewer.panY * dpr;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(imageCanvas, x, y, w, h);
    if (heatCanvas && viewer.showHeatmap) {
      ctx.globalAlpha = viewer.heatmapOpacity;
      ctx.drawImage(heatCanvas, x, y, w, h);
      ctx.globalAlpha = 1;
    }
  }, [imageCanvas, heatCanvas, viewer.zoom, viewer.panX, viewer.panY, viewer.showHeatmap, viewer.heatmapOpacity, box]);

  const range = item?.dicom ? item.dicom.range : { min: 0, max: 255 };
  const span = Math.max(1, range.max - range.min);

  return (
    <section className="viewer" aria-label="Image viewer">
      <canvas
        ref={canvasRef}
        className="viewer-canvas"
        data-testid="viewer-canvas"
        onContextMenu={(e) => e.preventDefault()}
        onPointerDown={(e) => {
          (e.target as HTMLElement).setPointerCapture(e.pointerId);
          drag.current = { x: e.clientX, y: e.clientY, mode: e.button === 2 || e.shiftKey ? 'window' : 'pan', start: { ...viewer, window: win } };
        }}
        onPointerMove={(e) => {
          const d = drag.current;
          if (!d) return;
          const dx = e.clientX - d.x;
          const dy = e.clientY - d.y;
          if (d.mode === 'pan') setViewer({ panX: d.start.panX + dx, panY: d.start.panY + dy });
          else {
            // Horizontal: width, vertical: level; one screen pixel ≈ 1/500 of the data range.
            const k = span / 500;
            setViewer({ window: { center: d.start.window!.center + dy * k, width: Math.max(1, d.start.window!.width + dx * k) } });
          }
        }}
        onPointerUp={() => (drag.current = null)}
      />
      {!item && <div className="viewer-empty">Drop a chest X-ray (PNG, JPEG or DICOM) or choose files to start.</div>}
      {item && (
        <div className="viewer-controls">
          <label>
            Level <output data-testid="window-center">{Math.round(win.center)}</output>
            <input
              type="range"
              aria-label="Window level (center)"
              min={range.min}
              max={range.max}
              step={span / 500}
              value={win.center}
              onChange={(e) => setViewer({ window: { ...win, center: Number(e.target.value) } })}
            />
          </label>
          <label>
            Width <output data-testid="window-width">{Math.round(win.width)}</output>
            <input
              type="range"
              aria-label="Window width"
              min={1}
              max={span * 2}
              step={span / 500}
              value={win.width}
              onChange={(e) => setViewer({ window: { ...win, width: Number(e.target.value) } })}
            />
          </label>
          {dicom && !dicom.rgb && dicom.presets.length > 1 && (
            <label>
              Preset
              <select
                data-testid="voi-preset"
                aria-label="Window / VOI LUT preset"
                value={viewer.window ? '' : activePreset?.id}
                onChange={(e) => setViewer({ presetId: e.target.value, window: undefined })}
              >
                {viewer.window && <option value="">custom window</option>}
                {dicom.presets.map((p) => (
                  <option key={p.id} value={p.id}>
                    {p.label}
                  </option>
                ))}
              </select>
            </label>
          )}
          {dicom && dicom.frames > 1 && (
            <label>
              Frame
              {/* free to change while the models run: a result lands only on the frame it was computed from (resultKey) */}
              <select
                data-testid="frame-picker"
                aria-label="Frame"
                value={dicom.frameIndex}
                onChange={(e) => void selectFrame(item.id, Number(e.target.value))}
              >
                {Array.from({ length: dicom.frames }, (_, f) => (
                  <option key={f} value={f}>
                    {f + 1} / {dicom.frames}
                  </option>
                ))}
              </select>
            </label>
          )}
          <button type="button" onClick={() => setViewer({ window: undefined, presetId: undefined, zoom: 1, panX: 0, panY: 0 })}>
            Reset view
          </button>
          <label className="inline">
            <input type="checkbox" checked={viewer.showHeatmap} onChange={(e) => setViewer({ showHeatmap: e.target.checked })} disabled={!heat} />
            Heatmap
          </label>
          <label>
            Opacity
            <input
              type="range"
              aria-label="Heatmap opacity"
              min={0}
              max={1}
              step={0.05}
              value={viewer.heatmapOpacity}
              disabled={!heat || !viewer.showHeatmap}
              onChange={(e) => setViewer({ heatmapOpacity: Number(e.target.value) })}
            />
          </label>
          <span className="hint">drag: pan · wheel: zoom · shift/right-drag: window</span>
          {item.display && (
            <p className="muted small" data-testid="model-input-display">
              Model input{dicom && dicom.frames > 1 ? ` (frame ${dicom.frameIndex + 1})` : ''}: rendered with {item.display}
              {dicom && !dicom.rgb && (viewer.window || (viewer.presetId && viewer.presetId !== dicom.defaultPresetId)) ? ' — the view above uses another window; the models do not' : ''}
            </p>
          )}
        </div>
      )}
      {item?.rasterInfo?.notes.length ? (
        <p className="small muted" data-testid="decode-notes" title="what was done to the stored pixels; the models see the same image">
          {item.rasterInfo.notes.join(' · ')}
        </p>
      ) : null}
    </section>
  );
}
