/**
 * The app's state is the intersection of its slices; each slice (one file in app/store/) owns its part of the state
 * and the actions that change it, and reads other slices through `get()`. Composed in app-store.ts.
 */
import type { StateCreator } from 'zustand';
import type { AlertsSlice } from './alerts';
import type { BatchSlice } from './batch';
import type { BatchExportSlice } from './batch-export';
import type { ClassifySlice } from './classify';
import type { DownloadsSlice } from './downloads';
import type { GallerySlice } from './gallery';
import type { GenerateSlice } from './generate';
import type { ImagesSlice } from './images';
import type { ModelsSlice } from './models';
import type { SegmentSlice } from './segment';
import type { SegmentEvalSlice } from './segment-eval';
import type { SegmentExportSlice } from './segment-export';
import type { SegmentLayersSlice } from './segment-layers';
import type { SettingsSlice } from './settings';
import type { ZeroShotSlice } from './zero-shot';

export type AppState = AlertsSlice &
  SettingsSlice &
  ModelsSlice &
  DownloadsSlice &
  ImagesSlice &
  ClassifySlice &
  ZeroShotSlice &
  BatchSlice &
  BatchExportSlice &
  SegmentSlice &
  SegmentLayersSlice &
  SegmentExportSlice &
  SegmentEvalSlice &
  GenerateSlice &
  GallerySlice;

/** A slice: (set, get, api) of the whole store, returning its own part. */
export type SliceCreator<T> = StateCreator<AppState, [], [], T>;
