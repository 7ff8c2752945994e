/**
 * How the segment slices (segment.ts, segment-layers.ts, segment-export.ts, segment-eval.ts) reach the store: the
 * chosen model and its request, the current image's segment state and the layer helpers. Segment state is keyed by
 * image AND frame (segImageKey), and an embedding by the model request (model | variant choice | backend | source:
 * tagOf), so a frame or model change never decodes against another's embedding or shows another's masks.
 * Stateless accessors over the store's (set, get); the slices keep their own state in their creators' closures.
 */
import { historyInit } from '../lib/sam';
import type { ImageItem } from './images';
import type { SegImageState, SegLayer, SamState } from './sam';
import { chosenModel } from './selectors';
import type { AppState } from './state';

type Set = (partial: (s: AppState) => Partial<AppState>) => void;

const COLORS: [number, number, number][] = [
  [255, 80, 80],
  [80, 160, 255],
  [80, 220, 120],
  [255, 200, 60],
  [200, 100, 255],
  [0, 220, 220],
];

/** The selected mask of a layer, if it has one (candidates not upscaled yet are empty). */
export function layerMask(l: SegLayer): Uint8Array | undefined {
  const m = l.masks?.[l.selected];
  return m && m.length ? m : undefined;
}

/**
 * A new empty layer with the index-th colour. Without a label it is "mask n" and named after its lung side once it
 * has a mask (autoLabel; app/lib/sam/lung-side.ts), until the user renames it.
 */
export function newLayer(id: number, index: number, label?: string): SegLayer {
  return { id, label: label ?? `mask ${index + 1}`, autoLabel: label === undefined, color: COLORS[index % COLORS.length], points: [], selected: 0 };
}

/** The key of an image's segment state: its id and, for a multi-frame DICOM, the frame shown. */
export function segImageKey(item: Pick<ImageItem, 'id' | 'dicom'>): string {
  return `${item.id}#f${item.dicom?.frameIndex ?? 0}`;
}

/** The current image's segment state (views read it through this). */
export function currentSegImage(s: Pick<AppState, 'images' | 'currentId' | 'sam'>): SegImageState | undefined {
  const item = s.images.find((i) => i.id === s.currentId);
  return item ? s.sam.byImage[segImageKey(item)] : undefined;
}

/** The segment slices' view of the store: request, engine, current image and its per-image state. */
export function segmentAccess(set: Set, get: () => AppState) {
  const req = () => {
    const entry = chosenModel(get(), 'sam');
    return entry ? get().modelRequest(entry) : null;
  };
  // model | the variants it may use (dtype choice) | backend setting | source
  const tagOf = (r: NonNullable<ReturnType<typeof req>>) =>
    `${r.entry.id}|${Object.keys(r.entry.variants).sort().join(',')}|${r.override}|${JSON.stringify(r.source.kind === 'local' ? { kind: 'local', name: r.source.name } : r.source)}`;
  const engine = () => get().workers.sam();
  const current = (): ImageItem | undefined => get().images.find((i) => i.id === get().currentId);
  const patchSeg = (p: Partial<SamState>) => set((s) => ({ sam: { ...s.sam, ...p } }));
  /** Patch the state under `id` (a segImageKey); no-op when it is gone. */
  const patchImage = (id: string, p: Partial<SegImageState>) =>
    set((s) => {
      const cur = s.sam.byImage[id];
      return cur ? { sam: { ...s.sam, byImage: { ...s.sam.byImage, [id]: { ...cur, ...p } } } } : {};
    });
  const imageState = (item: ImageItem): SegImageState => {
    const key = segImageKey(item);
    const have = get().sam.byImage[key];
    if (have) return have;
    const id = get().sam.layerSeq + 1;
    const st: SegImageState = { encoding: false, width: item.raster.width, height: item.raster.height, history: historyInit([newLayer(id, 0)]), activeLayer: id, decoding: false };
    set((s) => ({ sam: { ...s.sam, layerSeq: id, byImage: { ...s.sam.byImage, [key]: st } } }));
    return st;
  };
  /** The current image and the key of its segment state. */
  const currentKeyed = (): { item: ImageItem; key: string; st?: SegImageState } | undefined => {
    const item = current();
    if (!item) return undefined;
    const key = segImageKey(item);
    return { item, key, st: get().sam.byImage[key] };
  };
  const activeOf = (st: SegImageState) => st.history.present.find((l) => l.id === st.activeLayer) ?? st.history.present[0];
  return { req, tagOf, engine, current, currentKeyed, patchSeg, patchImage, imageState, activeOf };
}
