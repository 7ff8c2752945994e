/** What views import from the store. */
export { useAppStore } from './app-store';
export type { AppState } from './state';
export type { AlertMessage } from './alerts';
export type { ImageItem, ViewerState } from './images';
export type { ModelLoadState } from './models';
export type { DownloadState } from './downloads';
export type { BatchInput, BatchRow, BatchState } from './batch';
export type { Settings, ModelSourceSetting } from './settings';
export * from './selectors';
export { currentSegImage, histogram01, layerMask, LUNGS, segImageKey, worstCasesOf } from './sam';
export type { SegLayer, SegImageState, SamState } from './sam';
