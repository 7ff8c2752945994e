/**
 * The one zustand store, composed from its slices (the only place they meet). Components read state and call
 * actions; they never call workers, the model cache or the inference service themselves.
 */
import { create } from 'zustand';
import { createAlertsSlice } from './alerts';
import { createBatchSlice } from './batch';
import { createClassifySlice } from './classify';
import { createImagesSlice } from './images';
import { createModelsSlice } from './models';
import { createSegmentSlice } from './segment';
import { createGenerateSlice } from './generate';
import { createSettingsSlice } from './settings';
import type { AppState } from './state';
import { createZeroShotSlice } from './zero-shot';

export const useAppStore = create<AppState>()((...a) => ({
  ...createAlertsSlice(...a),
  ...createSettingsSlice(...a),
  ...createModelsSlice(...a),
  ...createImagesSlice(...a),
  ...createClassifySlice(...a),
  ...createZeroShotSlice(...a),
  ...createBatchSlice(...a),
  ...createSegmentSlice(...a),
  ...createGenerateSlice(...a),
}));
