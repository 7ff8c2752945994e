/**
 * The app's state is the intersection of its slices; each slice (one file in app/store/) owns its part of the state
 * and the actions that change it, and reads other slices through `get()`. Composed in app-store.ts.
 */
import type { StateCreator } from 'zustand';
import type { AlertsSlice } from './alerts';
import type { BatchSlice } from './batch';
import type { BatchExportSlice } from './batch-export';
import type { ClassifierSlice } from './classifier';
import type { DownloadsSlice } from './downloads';
import type { SdGallerySlice } from './sd-gallery';
import type { SdSlice } from './sd';
import type { ImagesSlice } from './images';
import type { ModelsSlice } from './models';
import type { SamSlice } from './sam';
import type { SamEvalSlice } from './sam-eval';
import type { SamExportSlice } from './sam-export';
import type { SamLayersSlice } from './sam-layers';
import type { SettingsSlice } from './settings';
import type { ClipSlice } from './clip';
import type { HubSlice } from './hub';

export type AppState = AlertsSlice &
  SettingsSlice &
  ModelsSlice &
  DownloadsSlice &
  ImagesSlice &
  ClassifierSlice &
  ClipSlice &
  BatchSlice &
  BatchExportSlice &
  SamSlice &
  SamLayersSlice &
  SamExportSlice &
  SamEvalSlice &
  SdSlice &
  SdGallerySlice &
  HubSlice;

/** A slice: (set, get, api) of the whole store, returning its own part. */
export type SliceCreator<T> = StateCreator<AppState, [], [], T>;
