/**
 * Segment layers: several labelled masks per image, choosing among a decode's candidate masks, clearing a layer,
 * and undo/redo over the layers (app/lib/sam/history.ts). The decodes themselves are in segment.ts.
 */
import { historyPush, historyRedo, historyUndo, longestSideShape, upscaleMask } from '../lib/sam';
import { newLayer, segImageKey, segmentAccess } from './sam-access';
import type { SliceCreator } from './state';

export interface SamLayersSlice {
  segmentSelectCandidate(i: number): void;
  segmentUndo(): void;
  segmentRedo(): void;
  segmentClear(): void;
  segmentAddLayer(label?: string): void;
  segmentSetActiveLayer(id: number): void;
  segmentRenameLayer(id: number, label: string): void;
}

export const createSamLayersSlice: SliceCreator<SamLayersSlice> = (set, get) => {
  const { current, patchSeg, patchImage, imageState, activeOf } = segmentAccess(set, get);
  return {
    segmentSelectCandidate(i) {
      const item = current();
      if (!item) return;
      const st = get().sam.byImage[segImageKey(item)];
      const l = activeOf(st);
      if (!l.masks?.[i] || !l.lowRes?.[i]) return;
      let masks = l.masks;
      if (!masks[i].length) {
        // upscaled on demand: the decode only upscaled the best candidate
        const size = get().sam.info?.imageSize;
        if (!size) return;
        const m = Math.round(Math.sqrt(l.lowRes[i].length));
        masks = masks.map((x, k) => (k === i ? upscaleMask(l.lowRes![i], m, longestSideShape(item.raster.width, item.raster.height, size)).mask : x));
      }
      patchImage(segImageKey(item), { history: historyPush(st.history, st.history.present.map((x) => (x.id === l.id ? { ...x, masks, selected: i } : x))) });
    },

    segmentUndo() {
      const item = current();
      const st = item && get().sam.byImage[segImageKey(item)];
      if (st) patchImage(segImageKey(item), { history: historyUndo(st.history) });
    },

    segmentRedo() {
      const item = current();
      const st = item && get().sam.byImage[segImageKey(item)];
      if (st) patchImage(segImageKey(item), { history: historyRedo(st.history) });
    },

    segmentClear() {
      const item = current();
      const st = item && get().sam.byImage[segImageKey(item)];
      if (!st) return;
      const l = activeOf(st);
      patchImage(segImageKey(item), { history: historyPush(st.history, st.history.present.map((x) => (x.id === l.id ? { ...newLayer(x.id, 0, x.label), autoLabel: x.autoLabel, color: x.color } : x))) });
      patchSeg({ preview: undefined });
    },

    segmentAddLayer(label) {
      const item = current();
      if (!item) return;
      const st = imageState(item);
      const id = get().sam.layerSeq + 1;
      const layer = newLayer(id, st.history.present.length, label);
      patchSeg({ layerSeq: id });
      patchImage(segImageKey(item), { history: historyPush(st.history, [...st.history.present, layer]), activeLayer: id });
    },

    segmentSetActiveLayer(id) {
      const item = current();
      if (item) patchImage(segImageKey(item), { activeLayer: id });
    },

    segmentRenameLayer(id, label) {
      const item = current();
      const st = item && get().sam.byImage[segImageKey(item)];
      if (st) patchImage(segImageKey(item), { history: { ...st.history, present: st.history.present.map((l) => (l.id === id ? { ...l, label, autoLabel: false } : l)) } });
    },
  };
};
