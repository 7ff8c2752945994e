/**
 * The one zustand store, composed from its slices (the only place they meet). Components read state and call
 * actions; they never call workers, the model cache or the inference service themselves.
 */
import { create } from 'zustand';
import { createAlertsSlice } from './alerts';
import { createBatchSlice } from './batch';
import { createBatchExportSlice } from './batch-export';
import { createClassifySlice } from './classify';
import { createDownloadsSlice } from './downloads';
import { createGallerySlice } from './gallery';
import { createGenerateSlice } from './generate';
import { createImagesSlice } from './images';
import { createModelsSlice } from './models';
import { createSegmentSlice } from './segment';
import { createSegmentEvalSlice } from './segment-eval';
import { createSegmentExportSlice } from './segment-export';
import { createSegmentLayersSlice } from './segment-layers';
import { createSettingsSlice } from './settings';
import type { AppState } from './state';
import { createZeroShotSlice } from './zero-shot';

export const useAppStore = create<AppState>()((...a) => ({
  ...createAlertsSlice(...a),
  ...createSettingsSlice(...a),
  ...createModelsSlice(...a),
  ...createDownloadsSlice(...a),
  ...createImagesSlice(...a),
  ...createClassifySlice(...a),
  ...createZeroShotSlice(...a),
  ...createBatchSlice(...a),
  ...createBatchExportSlice(...a),
  ...createSegmentSlice(...a),
  ...createSegmentLayersSlice(...a),
  ...createSegmentExportSlice(...a),
  ...createSegmentEvalSlice(...a),
  ...createGenerateSlice(...a),
  ...createGallerySlice(...a),
}));
