/**
 * Segment export: the current image's masks as PNG files, as polygons (JSON) or as one DICOM Segmentation
 * (app/lib/sam/dicom-seg.ts); the caller (a view) triggers the downloads.
 */
import { maskToPng, maskToPolygons, type Ring } from '../lib/sam';
import { buildDicomSeg, type SegSourceAttributes } from '../lib/sam/dicom-seg';
import { layerMask, segImageKey, segmentAccess } from './sam-access';
import { chosenModel } from './selectors';
import type { SliceCreator } from './state';

export interface SamExportSlice {
  /**
   * Files to save: the caller (a view) triggers the download. DICOM SEG: `includeIdentifying` is asked of the user
   * at export time (the view's question); without it the identifying fields are left out.
   */
  segmentExport(kind: 'png' | 'polygons' | 'dicom-seg', opts?: { includeIdentifying?: boolean }): { name: string; blob: Blob }[];
}

function download(name: string, bytes: Uint8Array | string, type: string) {
  return { name, blob: new Blob([bytes as BlobPart], { type }) };
}

export const createSamExportSlice: SliceCreator<SamExportSlice> = (set, get) => {
  const { current } = segmentAccess(set, get);
  return {
    segmentExport(kind, opts = {}) {
      const item = current();
      const st = item && get().sam.byImage[segImageKey(item)];
      if (!item || !st) return [];
      const layers = st.history.present.filter((l) => layerMask(l));
      if (!layers.length) {
        get().alert('Nothing to export: segment something first');
        return [];
      }
      const { width: w, height: h } = item.raster;
      const stem = item.name.replace(/\.[^.]+$/, '');
      const slug = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');
      const entry = chosenModel(get(), 'sam');
      if (kind === 'png') return layers.map((l) => download(`${stem}_${slug(l.label)}_mask.png`, maskToPng(layerMask(l)!, w, h), 'image/png'));
      if (kind === 'polygons') {
        const doc = {
          image: item.name,
          width: w,
          height: h,
          coordinates: 'image pixels, origin top-left, x right, y down; vertices at pixel corners; fill even-odd',
          model: entry ? { id: entry.id, weights: entry.weights } : undefined,
          masks: layers.map((l) => ({ label: l.label, predicted_iou: l.iou?.[l.selected], polygons: maskToPolygons(layerMask(l)!, w, h) as Ring[] })),
        };
        return [download(`${stem}_polygons.json`, JSON.stringify(doc), 'application/json')];
      }
      const d = item.dicom;
      if (!d) {
        get().alert('DICOM SEG export needs a DICOM image');
        return [];
      }
      try {
        const src: SegSourceAttributes = {
          Rows: d.height,
          Columns: d.width,
          SOPClassUID: d.metadata.SOPClassUID,
          PixelSpacing: d.metadata.PixelSpacing,
          ImagerPixelSpacing: d.metadata.ImagerPixelSpacing,
          ...d.identifying,
        };
        const bytes = buildDicomSeg(src, layers.map((l) => ({ label: l.label, mask: layerMask(l)! })), {
          algorithmName: entry ? `${entry.id} (${entry.weights})` : 'SAM',
          includeIdentifying: opts.includeIdentifying === true,
        });
        return [download(`${stem}_seg.dcm`, bytes, 'application/dicom')];
      } catch (e) {
        get().alert(`DICOM SEG export failed: ${(e as Error).message}`);
        return [];
      }
    },
  };
};
