/**
 * Images and the viewer: decoded files (off the main thread, in the imaging worker), the current image, zoom/pan,
 * DICOM window and heatmap settings. Selecting an image starts its analysis by the chosen models.
 */
import type { ModelEntry } from '../lib/models/manifest-types';
import { labelFromPath } from '../lib/batch';
import type { DicomImage, DicomWindow } from '../lib/imaging/dicom';
import type { RasterDecodeInfo } from '../lib/imaging/raster-decode';
import type { Raster } from '../lib/imaging/raster';
import { DEFAULT_MAX_BYTES, fileSizeError } from '../lib/imaging/limits';
import { distinctInputSizes, type ModelInputs } from '../lib/imaging/model-inputs';
import type { ClassifierResult } from '../lib/classifier/types';
import type { ZeroShotOutput } from '../lib/clip/types';
import { transfer } from '../platform/browser/workers';
import { afterNextPaint } from '../platform/browser/warm-image';
import { errorMessage } from '../lib/runtime/outcome';
import { guarded } from './alerts';
import { chosenModel } from './selectors';
import type { SliceCreator } from './state';

export interface ImageItem {
  id: string;
  name: string;
  /** Relative path (folder picks), used for ground truth from NORMAL/ PNEUMONIA/ folder names. */
  path: string;
  bytes: number;
  format: 'png' | 'jpeg' | 'dicom';
  raster: Raster;
  thumbnail: Raster;
  dicom?: DicomImage;
  /** What `raster` (the model input) was rendered with, e.g. "Window 1 (LUNG): C -600 / W 1500" (DICOM). */
  display?: string;
  /** A multi-frame DICOM's bytes, kept for the frame picker (see selectFrame). */
  source?: ArrayBuffer;
  /** PNG/JPEG: EXIF orientation and 16-bit window applied while decoding (notes shown in the viewer). */
  rasterInfo?: RasterDecodeInfo;
  /** The image resized once per model input size in the imaging worker (valid while `raster` is this one). */
  modelInputs?: ModelInputs;
  groundTruth?: string;
  classification?: ClassifierResult & { weights: ModelEntry['weights'] };
  classifying?: boolean;
  classifyError?: string;
  zeroShot?: ZeroShotOutput & { weights: ModelEntry['weights']; modelId: string };
  zeroShotRunning?: boolean;
  zeroShotError?: string;
}

export interface ViewerState {
  zoom: number;
  panX: number;
  panY: number;
  /** Display window for DICOM (modality units) or for 8-bit images (0..255); set when the user drags or slides. */
  window?: DicomWindow;
  /** DICOM: the VOI preset shown when no window was dragged (DicomImage.presets; default: the file's first). */
  presetId?: string;
  showHeatmap: boolean;
  heatmapOpacity: number;
  showIdentifying: boolean;
}

export interface ImagesSlice {
  images: ImageItem[];
  /** Last image id number handed out. */
  imageSeq: number;
  currentId?: string;
  viewer: ViewerState;
  /** Files being decoded (the drop zone shows a spinner). */
  busy: number;
  /** The file being decoded now, for the drop zone's progress bar (index of total). */
  decoding?: { name: string; index: number; total: number; bytes: number };
  /** Stop opening files: the decode in flight is cancelled (its worker terminated), the rest are not read. */
  cancelDecoding(): void;
  /** Decode and add files, one at a time (a `blob` is read only when its turn comes). */
  addFiles(files: { name: string; bytes?: ArrayBuffer; blob?: Blob; path?: string }[]): Promise<void>;
  select(id: string): void;
  /** Show (and analyse) another frame of a multi-frame DICOM: decoded on demand in the imaging worker. */
  selectFrame(id: string, frame: number): Promise<void>;
  /** Classify and zero-shot label the current image where it has no result from the chosen models yet. */
  analyzeCurrent(): Promise<void>;
  /** Patch one image (no-op when it was removed meanwhile). */
  patchImage(id: string, p: Partial<ImageItem>): void;
  setViewer(p: Partial<ViewerState>): void;
}

export const createImagesSlice: SliceCreator<ImagesSlice> = (set, get) => {
  /** Set by cancelDecoding, read by the addFiles loop (not rendered: not state). */
  let cancelRequested = false;
  /** The newest frame request per image (selectFrame): only its decode is shown. */
  const frameWanted = new Map<string, { frame: number; token: number }>();
  let frameSeq = 0;
  return {
  images: [],
  imageSeq: 0,
  viewer: { zoom: 1, panX: 0, panY: 0, showHeatmap: true, heatmapOpacity: 0.45, showIdentifying: false },
  busy: 0,

  cancelDecoding() {
    if (!get().decoding) return;
    cancelRequested = true;
    get().workers.cancelImaging();
  },

  addFiles: guarded(get, 'Opening the files failed', async (files: { name: string; bytes?: ArrayBuffer; blob?: Blob; path?: string }[]) => {
    if (!files.length) return;
    set((s) => ({ busy: s.busy + 1 }));
    cancelRequested = false;
    const added: ImageItem[] = [];
    try {
      for (const [index, f] of files.entries()) {
        if (cancelRequested) break;
        const size = f.bytes?.byteLength ?? f.blob?.size ?? 0;
        set({ decoding: { name: f.name, index, total: files.length, bytes: size } });
        const st = get();
        const sizes = distinctInputSizes([chosenModel(st, 'classifier'), chosenModel(st, 'clip')]);
        let out;
        // Size checked before the file is read: one over the limit never costs its size in memory.
        const tooLarge = fileSizeError(size, DEFAULT_MAX_BYTES);
        if (tooLarge) {
          get().alert(`${f.name}: ${tooLarge.message}`);
          continue;
        }
        try {
          const bytes = f.bytes ?? (await f.blob!.arrayBuffer());
          out = await get().workers.imaging().decode(transfer(bytes, [bytes]), { sizes });
        } catch (e) {
          if (cancelRequested) break;
          get().alert(`${f.name}: ${errorMessage(e)}`);
          continue;
        }
        if (!out.ok) {
          get().alert(`${f.name}: ${out.message}`);
          continue;
        }
        const seq = get().imageSeq + 1;
        const item: ImageItem = {
          id: `img-${seq}`,
          name: f.name,
          path: f.path ?? f.name,
          bytes: size,
          format: out.image.format,
          raster: out.image.raster,
          thumbnail: out.thumbnail,
          dicom: out.image.dicom,
          display: out.image.display,
          source: out.source,
          rasterInfo: out.image.rasterInfo,
          modelInputs: out.modelInputs?.length ? { of: out.image.raster, sizes, rasters: out.modelInputs } : undefined,
          groundTruth: labelFromPath(f.path ?? f.name) ?? undefined,
        };
        added.push(item);
        set((s) => ({ imageSeq: seq, images: [...s.images, item] }));
      }
    } finally {
      set((s) => ({ busy: s.busy - 1, decoding: undefined }));
    }
    if (cancelRequested) get().alert(`Opening cancelled: ${added.length} of ${files.length} files opened`, 'info');
    // Selecting starts the analysis (see select).
    if (added.length) get().select(added[added.length - 1].id);
  }),

  select(id) {
    const item = get().images.find((i) => i.id === id);
    set((s) => ({
      currentId: id,
      viewer: {
        ...s.viewer,
        zoom: 1,
        panX: 0,
        panY: 0,
        window: undefined,
        presetId: undefined,
        showIdentifying: false,
      },
    }));
    // Images added together are analysed when first looked at.
    void get().analyzeCurrent();
  },

  selectFrame: guarded(get, 'Showing the frame failed', async (id: string, frame: number) => {
    const item = get().images.find((i) => i.id === id);
    if (!item?.source || !item.dicom) return;
    // Compared with the newest request, not the frame shown: picks made while a decode runs (0 -> 1 -> 0) must end on
    // the last one picked, and a stale decode that finishes late must not replace it.
    if (frame === (frameWanted.get(id)?.frame ?? item.dicom.frameIndex)) return;
    const token = ++frameSeq;
    frameWanted.set(id, { frame, token });
    const newest = () => frameWanted.get(id)?.token === token;
    let out;
    try {
      // A copy goes to the worker (the kept bytes stay for the next frame change).
      const copy = item.source.slice(0);
      out = await get().workers.imaging().decode(transfer(copy, [copy]), { frame });
    } finally {
      if (newest()) frameWanted.delete(id);
      else out = undefined;
    }
    if (!out) return;
    if (!out.ok) {
      get().alert(`${item.name}, frame ${frame + 1}: ${out.message}`);
      return;
    }
    // Results were for the previous frame: drop them, and analyse this one.
    get().patchImage(id, {
      raster: out.image.raster,
      thumbnail: out.thumbnail,
      dicom: out.image.dicom,
      display: out.image.display,
      classification: undefined,
      classifyError: undefined,
      zeroShot: undefined,
      zeroShotError: undefined,
    });
    if (get().currentId === id) {
      set((s) => ({ viewer: { ...s.viewer, window: undefined } }));
      await get().analyzeCurrent();
    }
  }),

  analyzeCurrent: guarded(get, 'Analysis failed', async () => {
    const s = get();
    const item = s.images.find((i) => i.id === s.currentId);
    if (!item) return;
    // The classification first, then the zero-shot labels (results already there for these models are kept). Run
    // side by side, the two workers' downloads, session creations and WASM threads share the same cores and the
    // headline result came later (issue 12.4: the drop -> classification time is what a researcher waits for).
    const classifierId = chosenModel(s, 'classifier')?.id;
    const clipId = chosenModel(s, 'clip')?.id;
    const needClassifier = classifierId && !item.classifying && item.classification?.modelId !== classifierId;
    const needZeroShot = clipId && !item.zeroShotRunning && item.zeroShot?.modelId !== clipId;
    if (needClassifier) await get().classifyCurrent();
    // The zero-shot model's inference starts once the classification is painted, not during its paint.
    if (needClassifier && needZeroShot) await afterNextPaint();
    if (needZeroShot) await get().zeroShotCurrent();
  }),

  patchImage(id, p) {
    set((st) => ({ images: st.images.map((i) => (i.id === id ? { ...i, ...p } : i)) }));
  },

  setViewer(p) {
    set((s) => ({ viewer: { ...s.viewer, ...p } }));
  },
};
};
