/**
 * The one zustand store, composed from its slices (the only place they meet). Components read state and call
 * actions; they never call workers, the model cache or the inference service themselves.
 */
import { create } from 'zustand';
import { createAlertsSlice } from './alerts';
import { createBatchSlice } from './batch';
import { createBatchExportSlice } from './batch-export';
import { createClassifierSlice } from './classifier';
import { createDownloadsSlice } from './downloads';
import { createSdGallerySlice } from './sd-gallery';
import { createSdSlice } from './sd';
import { createImagesSlice } from './images';
import { createModelsSlice } from './models';
import { createSamSlice } from './sam';
import { createSamEvalSlice } from './sam-eval';
import { createSamExportSlice } from './sam-export';
import { createSamLayersSlice } from './sam-layers';
import { createSettingsSlice } from './settings';
import type { AppState } from './state';
import { createClipSlice } from './clip';
import { createHubSlice } from './hub';

export const useAppStore = create<AppState>()((...a) => ({
  ...createAlertsSlice(...a),
  ...createSettingsSlice(...a),
  ...createModelsSlice(...a),
  ...createDownloadsSlice(...a),
  ...createImagesSlice(...a),
  ...createClassifierSlice(...a),
  ...createClipSlice(...a),
  ...createBatchSlice(...a),
  ...createBatchExportSlice(...a),
  ...createSamSlice(...a),
  ...createSamLayersSlice(...a),
  ...createSamExportSlice(...a),
  ...createSamEvalSlice(...a),
  ...createSdSlice(...a),
  ...createSdGallerySlice(...a),
  ...createHubSlice(...a),
}));
