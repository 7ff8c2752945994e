/**
 * The Segment tab: images on the left, the canvas and folder evaluation in the middle, the panel on the right. While
 * it is shown the other tabs' idle prewarm waits (store: segmentTabShown / whenSegmentClosed).
 */
import { useEffect } from 'react';
import { useAppStore } from '../store';
import { DropZone } from './DropZone';
import { ImageStrip } from './ImageStrip';
import { DownloadProgressBar } from './ModelManager';
import { SegmentCanvas } from './segment/SegmentCanvas';
import { SegmentEval } from './segment/SegmentEval';
import { SegmentPanel } from './segment/SegmentPanel';

export function SegmentView() {
  const shown = useAppStore((s) => s.segmentTabShown);
  useEffect(() => {
    shown(true);
    return () => shown(false);
  }, [shown]);
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
