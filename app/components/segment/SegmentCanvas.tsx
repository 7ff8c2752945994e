/**
 * The Segment canvas: the image, the labelled masks (repainted only when they or the opacity change) and, on top,
 * the prompts, the box being dragged and the hover preview (the only layer a pointer move repaints). Sized to the
 * height actually left to it (alerts above included), so no part of the image is clipped or unclickable.
 */
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'react';
import { currentSegImage, layerMask, segImageKey, useAppStore } from '../../store';
import type { Box } from '../../lib/sam';
import { drawOverlay, rasterCanvas } from './canvas-util';

/** Width (px) that shows the whole image in the height left to it in `.segment-center`. */
function useFitWidth(aspect: number) {
  const rootRef = useRef<HTMLDivElement>(null);
  const stackRef = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState<number | undefined>(undefined);
  useLayoutEffect(() => {
    const root = rootRef.current;
    const center = root?.parentElement;
    if (!root || !center || !aspect) return;
    const fit = () => {
      const stack = stackRef.current;
      if (!stack) return;
      // everything of the panel that is not the image: padding, border, the hint line
      const chrome = root.offsetHeight - stack.offsetHeight;
      const cs = getComputedStyle(root);
      const innerW = root.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
      const maxH = Math.max(120, center.clientHeight - chrome);
      setWidth(Math.floor(Math.min(innerW, maxH * aspect)));
    };
    fit();
    const ro = new ResizeObserver(fit);
    ro.observe(center);
    return () => ro.disconnect();
  }, [aspect]);
  return { rootRef, stackRef, width };
}

export function SegmentCanvas() {
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const st = useAppStore(currentSegImage);
  const opacity = useAppStore((s) => s.sam.opacity);
  const preview = useAppStore((s) => s.sam.preview);
  const tool = useAppStore((s) => s.sam.tool);
  const click = useAppStore((s) => s.segmentClick);
  const boxAction = useAppStore((s) => s.segmentBox);
  const hover = useAppStore((s) => s.segmentHover);
  const hoverEnd = useAppStore((s) => s.segmentHoverEnd);
  const imgRef = useRef<HTMLCanvasElement>(null);
  const masksRef = useRef<HTMLCanvasElement>(null);
  const topRef = useRef<HTMLCanvasElement>(null);
  const drag = useRef<{ x: number; y: number; moved: boolean } | null>(null);
  const [dragBox, setDragBox] = useState<Box | null>(null);
  const base = useMemo(() => (item ? rasterCanvas(item.raster) : null), [item?.raster]);
  const { rootRef, stackRef, width } = useFitWidth(item ? item.raster.width / item.raster.height : 0);

  useEffect(() => {
    const c = imgRef.current;
    if (!c || !base) return;
    c.width = base.width;
    c.height = base.height;
    c.getContext('2d')!.drawImage(base, 0, 0);
  }, [base]);

  const layers = st?.history.present;
  // a layout effect: the new mask is drawn before the browser paints the frame its store change rendered, not a
  // frame later (a passive effect waits for that paint)
  useLayoutEffect(() => {
    const c = masksRef.current;
    if (!c || !item) return;
    const ms = (layers ?? []).filter((l) => layerMask(l)).map((l) => ({ mask: layerMask(l)!, color: l.color, alpha: opacity }));
    drawOverlay(c, item.raster.width, item.raster.height, ms);
  }, [item, layers, opacity]);

  const imageKey = item ? segImageKey(item) : '';
  useEffect(() => {
    const c = topRef.current;
    if (!c || !item) return;
    const { width: w, height: h } = item.raster;
    if (c.width !== w) c.width = w;
    if (c.height !== h) c.height = h;
    const ctx = c.getContext('2d')!;
    // the hover preview arrives painted (segment worker): only blitted here
    if (preview && preview.imageId === imageKey && preview.width === w && preview.height === h) ctx.putImageData(new ImageData(preview.rgba as Uint8ClampedArray<ArrayBuffer>, w, h), 0, 0);
    else ctx.clearRect(0, 0, w, h);
    const r = Math.max(3, Math.round(Math.max(w, h) / 150));
    ctx.lineWidth = Math.max(1, r / 2);
    for (const l of layers ?? []) {
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
  }, [item, imageKey, layers, preview, dragBox, st?.activeLayer]);

  if (!item) return <div className="viewer panel muted" data-testid="segment-empty">Open an X-ray to segment it.</div>;

  const toImage = (e: React.PointerEvent | React.MouseEvent): [number, number] => {
    const rect = topRef.current!.getBoundingClientRect();
    const x = ((e.clientX - rect.left) * item.raster.width) / rect.width;
    const y = ((e.clientY - rect.top) * item.raster.height) / rect.height;
    return [Math.min(Math.max(x, 0), item.raster.width), Math.min(Math.max(y, 0), item.raster.height)];
  };
  const minDrag = Math.max(4, item.raster.width / 100);

  return (
    // flex-shrink 0: the column scrolls instead of squeezing (and clipping) the canvas; its size is set by useFitWidth
    <div className="viewer panel segment-canvas" ref={rootRef} style={{ flexShrink: 0 }}>
      <div className="segment-stack" ref={stackRef} style={{ width: width !== undefined ? `${width}px` : '100%' }}>
        <canvas ref={imgRef} className="segment-image" data-testid="segment-image" />
        <canvas ref={masksRef} className="segment-overlay segment-masks" aria-hidden="true" style={{ pointerEvents: 'none' }} />
        <canvas
          ref={topRef}
          className="segment-overlay"
          data-testid="segment-overlay"
          onContextMenu={(e) => {
            e.preventDefault();
            const [x, y] = toImage(e);
            void click(x, y, 0);
          }}
          onPointerDown={(e) => {
            if (e.button !== 0) return;
            // a hover preview not yet started must not run ahead of this click's or box's decode
            hoverEnd();
            const [x, y] = toImage(e);
            drag.current = { x, y, moved: false };
            (e.target as Element).setPointerCapture?.(e.pointerId);
          }}
          onPointerMove={(e) => {
            const [x, y] = toImage(e);
            const d = drag.current;
            if (d) {
              if (Math.hypot(x - d.x, y - d.y) > minDrag || tool === 'box') {
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
            else if (tool === 'click') void click(x, y, e.shiftKey || e.altKey ? 0 : 1);
          }}
        />
      </div>
      <p className="muted small">Click: positive point · Shift+click or right-click: negative point · drag: box · hover: preview</p>
    </div>
  );
}
