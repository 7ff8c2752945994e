/**
 * The generate gallery's history: runs kept in IndexedDB across reloads (app/platform/browser/gallery.ts), deleted
 * one by one or all at once, and a run exported as a grid PNG + JSON record (app/lib/generate/record.ts). The runs
 * themselves are made by generate.ts.
 */
import { composeGrid, generationRecord, type RgbaImage } from '../lib/generate';
import { loadGalleryRuns, pngToRgba, rgbaToPng, saveBlob, saveGalleryRuns } from '../platform/browser/gallery';
import { guarded } from './alerts';
import type { GalleryRun } from './generate';
import type { AppState, SliceCreator } from './state';

export interface GallerySlice {
  loadGalleryHistory(): Promise<void>;
  deleteGalleryRun(id: string): Promise<void>;
  clearGallery(): Promise<void>;
  exportGalleryRun(id: string): Promise<void>;
}

/** Save the finished runs (a running one is saved when it ends); a failure is an alert, the runs stay in memory. */
export async function persistGallery(get: () => AppState): Promise<void> {
  try {
    await saveGalleryRuns(get().gen.runs.filter((r) => r.status !== 'running'));
  } catch (e) {
    get().alert(`The gallery history could not be saved: ${(e as Error).message}`);
  }
}

export const createGallerySlice: SliceCreator<GallerySlice> = (set, get) => {
  const patch = (p: Partial<AppState['gen']>) => set((st) => ({ gen: { ...st.gen, ...p } }));
  const persist = () => persistGallery(get);
  return {
    async loadGalleryHistory() {
      try {
        const runs = await loadGalleryRuns<GalleryRun>();
        const seq = Math.max(get().gen.seq, ...runs.map((r) => Number(r.id.split('-')[1]) || 0));
        patch({ runs, historyLoaded: true, seq });
      } catch (e) {
        patch({ historyLoaded: true });
        get().alert(`The gallery history could not be read: ${(e as Error).message}`);
      }
    },

    async deleteGalleryRun(id) {
      set((st) => ({ gen: { ...st.gen, runs: st.gen.runs.filter((r) => r.id !== id) } }));
      await persist();
    },

    async clearGallery() {
      set((st) => ({ gen: { ...st.gen, runs: st.gen.runs.filter((r) => r.status === 'running') } }));
      await persist();
    },

    exportGalleryRun: guarded(get, 'Export failed', async (id: string) => {
      const run = get().gen.runs.find((r) => r.id === id);
      if (!run) return;
      {
        const entry = get().manifest?.models.find((m) => m.id === run.model.id);
        const rows: (RgbaImage | null)[][] = [];
        for (const seed of run.seeds) {
          const row: (RgbaImage | null)[] = [];
          for (const side of run.sides) {
            const im = run.images.find((i) => i.seed === seed && i.side === side);
            row.push(im ? await pngToRgba(im.url) : null);
          }
          rows.push(row);
        }
        const maxW = Math.max(1, ...run.images.map((i) => i.width));
        const g = composeGrid(rows, 4, Math.max(1, Math.floor(256 / maxW)));
        const { blob } = await rgbaToPng(g.width, g.height, g.data);
        const base = `cxr-gallery-${run.model.id}-${run.created.replace(/[:.]/g, '-')}`;
        const record = entry
          ? generationRecord({
              entry,
              dtype: run.model.dtype,
              layout: run.model.layout,
              backend: run.model.backend,
              prompt: run.prompt,
              negativePrompt: run.negativePrompt,
              seeds: run.seeds,
              steps: run.steps,
              guidanceScale: run.guidance,
              sides: run.sides,
              created: new Date(run.created),
              images: run.images.map((i) => ({ side: i.side, seed: i.seed, width: i.width, height: i.height, sha256: i.sha256, timesteps: [], stepMs: i.stepMs, totalMs: Math.round(i.totalMs), score: i.score })),
            })
          : { ...run, images: run.images.map(({ url: _u, ...rest }) => rest) };
        saveBlob(blob, `${base}.png`);
        saveBlob(new Blob([JSON.stringify({ ...record, grid: `${base}.png` }, null, 1)], { type: 'application/json' }), `${base}.json`);
      }
    }),
  };
};
