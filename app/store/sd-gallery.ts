/**
 * The generate gallery's history: runs kept in IndexedDB across reloads, one key per run (app/platform/browser/
 * gallery.ts), written as a run progresses and never as a whole-history rewrite, so a failed read can never lead
 * to other runs being overwritten; deleted one by one or all at once; a run exported as a grid PNG + the JSON record
 * `npm run generate` writes for the same request (app/services/sd.ts: galleryRecord). Runs are made by
 * generate.ts. A run found 'running' at load time was cut off (page closed or crashed) and shows as such.
 */
import { composeGrid, type RgbaImage } from '../lib/sd';
import { errorMessage } from '../lib/runtime/outcome';
import { deleteGalleryRun, loadGalleryRuns, pngToRgba, rgbaToPng, saveBlob, saveGalleryRun } from '../platform/browser/gallery';
import { galleryRecord } from '../services/sd';
import { guarded } from './alerts';
import type { GalleryRun } from './sd';
import type { AppState, SliceCreator } from './state';

export interface SdGallerySlice {
  loadGalleryHistory(): Promise<void>;
  deleteGalleryRun(id: string): Promise<void>;
  clearGallery(): Promise<void>;
  exportGalleryRun(id: string): Promise<void>;
}

/** Save one run under its own key; a failure is an alert, the run stays in memory. */
export async function saveRun(get: () => AppState, id: string): Promise<void> {
  const run = get().sd.runs.find((r) => r.id === id);
  if (!run) return;
  try {
    await saveGalleryRun(run);
  } catch (e) {
    get().alert(`The gallery run could not be saved: ${errorMessage(e)}`);
  }
}

const byCreatedDesc = (a: GalleryRun, b: GalleryRun) => b.created.localeCompare(a.created);

export const createSdGallerySlice: SliceCreator<SdGallerySlice> = (set, get) => {
  const patch = (p: Partial<AppState['sd']>) => set((st) => ({ sd: { ...st.sd, ...p } }));
  let loading: Promise<void> | null = null;
  return {
    loadGalleryHistory() {
      loading ??= (async () => {
        try {
          const stored = await loadGalleryRuns<GalleryRun>();
          // 'running' in storage: the page was closed or crashed mid-run; the seeds saved so far are kept
          const runs = stored.map((r) => (r.status === 'running' ? { ...r, status: 'cancelled' as const, message: `interrupted after ${r.seeds.length} seed(s): the page was closed or reloaded` } : r));
          const mine = new Set(get().sd.runs.map((r) => r.id));
          patch({ runs: [...get().sd.runs, ...runs.filter((r) => !mine.has(r.id))].sort(byCreatedDesc), historyLoaded: true, historyError: undefined });
        } catch (e) {
          // Nothing is overwritten by later saves (one key per run): say so and let the user generate.
          const message = `The gallery history could not be read: ${errorMessage(e)} (saved runs are left as they are)`;
          patch({ historyLoaded: true, historyError: message });
          get().alert(message);
        } finally {
          loading = null;
        }
      })();
      return loading;
    },

    deleteGalleryRun: guarded(get, 'Deleting the run failed', async (id: string) => {
      await deleteGalleryRun(id);
      set((st) => ({ sd: { ...st.sd, runs: st.sd.runs.filter((r) => r.id !== id) } }));
    }),

    clearGallery: guarded(get, 'Deleting the history failed', async () => {
      for (const r of get().sd.runs.filter((x) => x.status !== 'running')) {
        await deleteGalleryRun(r.id);
        set((st) => ({ sd: { ...st.sd, runs: st.sd.runs.filter((x) => x.id !== r.id) } }));
      }
    }),

    exportGalleryRun: guarded(get, 'Export failed', async (id: string) => {
      const run = get().sd.runs.find((r) => r.id === id);
      if (!run) return;
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
        ? galleryRecord({
            entry,
            model: run.model,
            plan: { prompt: run.prompt, negativePrompt: run.negativePrompt, steps: run.steps, guidance: run.guidance, sides: run.sides },
            seeds: run.seeds,
            created: new Date(run.created),
            images: run.images.map((i) => ({ ...i, timesteps: i.timesteps ?? [], totalMs: Math.round(i.totalMs) })),
          })
        : { ...run, images: run.images.map(({ url: _u, ...rest }) => rest) };
      saveBlob(blob, `${base}.png`);
      saveBlob(new Blob([JSON.stringify({ ...record, grid: `${base}.png` }, null, 1)], { type: 'application/json' }), `${base}.json`);
    }),
  };
};
