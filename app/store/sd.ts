/**
 * Generate slice: the side-by-side base vs LoRA gallery. Each run = one prompt, N seeds, base and LoRA images from
 * the same initial latents (same seed), each scored by the chosen classifier. The run itself (seeds, sides, guidance
 * default, scoring, record) is app/services/sd.ts, the same code `npm run generate` runs; this slice adds the
 * state, the size check BEFORE any download (and again in the worker before any session), and saves the run to
 * IndexedDB after every seed (one key per run, gallery.ts). History and export actions are in gallery.ts.
 */
import type { GenerateEvent, GenerateReport, ImageScore, Side, UnetLayout } from '../lib/sd';
import { checkSdFit, chooseLayout } from '../lib/sd';
import type { ClassifierEngine } from '../lib/classifier/engine';
import { errorMessage } from '../lib/runtime/outcome';
import { browserDevice } from '../platform/browser/ort';
import { pngDataUrl } from '../platform/browser/gallery';
import { defaultGuidance, planGallery, runGallery, scoresFrom } from '../services/sd';
import { saveRun } from './sd-gallery';
import { chosenModel } from './selectors';
import { downloadedVariants } from '../lib/models/model-cache';
import { entrySource } from '../lib/hub/source';
import type { AppState, SliceCreator } from './state';

export { defaultGuidance };

export const DEFAULT_PROMPTS = [
  'a chest X-ray showing pneumonia',
  'a normal chest X-ray',
  'a chest X-ray showing bilateral patchy opacities',
  'a frontal chest radiograph of a child with pneumonia',
];

export interface GalleryImage {
  side: Side;
  seed: number;
  width: number;
  height: number;
  /** PNG as a data: URL (kept in IndexedDB with the run). */
  url: string;
  sha256: string;
  totalMs: number;
  stepMs: number[];
  /** The LCM timesteps the image was made with (absent in runs saved before they were kept). */
  timesteps?: number[];
  /** The file name `npm run generate` gives this image. */
  file?: string;
  score?: ImageScore;
}

export interface GalleryRun {
  id: string;
  created: string;
  prompt: string;
  negativePrompt: string;
  steps: number;
  guidance: number;
  seeds: number[];
  sides: Side[];
  model: { id: string; name: string; weights: string; dtype: string; layout: UnetLayout; backend: string };
  images: GalleryImage[];
  status: 'running' | 'done' | 'cancelled' | 'error';
  message?: string;
}

export interface GenerateForm {
  prompt: string;
  negativePrompt: string;
  steps: number;
  /** diffusers' guidance_scale; undefined: the model's default (its config's guidance_scale). */
  guidance?: number;
  seed: number;
  numSeeds: number;
}

export interface SdState {
  form: GenerateForm;
  running: boolean;
  progress: { done: number; total: number; text: string } | null;
  report: GenerateReport | null;
  error?: string;
  runs: GalleryRun[];
  /** The history was read (or its read failed, said in historyError): Generate is enabled only after. */
  historyLoaded: boolean;
  historyError?: string;
  /** Counter for run ids. */
  seq: number;
  /** Set by cancelGenerate: the seed loop stops before its next seed (the worker stops its current step loop). */
  cancelRequested: boolean;
}

export interface SdSlice {
  sd: SdState;
  setGenForm(p: Partial<GenerateForm>): void;
  generateRun(): Promise<void>;
  cancelGenerate(): Promise<void>;
  /**
   * The Generate tab was opened: when the chosen model's planned variant is already downloaded and fits here,
   * create its sessions now (the worker checks the fit again), so the first Generate click pays no session
   * creation. Never downloads (that waits for the user's Generate click); silent on failure (the run reports it).
   */
  generatePrewarm(): Promise<void>;
}


export const createSdSlice: SliceCreator<SdSlice> = (set, get) => {
  const device = browserDevice();
  const patch = (p: Partial<SdState>) => set((st) => ({ sd: { ...st.sd, ...p } }));
  const updateRun = (id: string, f: (r: GalleryRun) => GalleryRun) =>
    set((st) => ({ sd: { ...st.sd, runs: st.sd.runs.map((r) => (r.id === id ? f(r) : r)) } }));

  async function score(images: { width: number; height: number; data: Uint8ClampedArray }[]): Promise<(ImageScore | undefined)[]> {
    const cls = chosenModel(get(), 'classifier');
    if (!cls || !images.length) return images.map(() => undefined);
    const report = await get().ensureClassifierLoaded();
    if (!report) return images.map(() => undefined);
    const req = get().modelRequest(cls);
    try {
      const out = await get().inference.run(req, (e: ClassifierEngine) => e.classify(req, images, { heatmap: false }));
      return scoresFrom(cls, out.results);
    } catch (e) {
      get().alert(`Scoring the generated images failed: ${errorMessage(e)}`);
      return images.map(() => undefined);
    }
  }

  async function galleryRun(): Promise<void> {
    const s = get();
    const entry = chosenModel(s, 'sd');
    if (!entry) {
      patch({ error: 'No text-to-image (sd) model in the model list' });
      return;
    }
    patch({ running: true, cancelRequested: false, error: undefined, progress: { done: 0, total: 1, text: 'checking the model fits' } });
    const fail = (message: string) => {
      patch({ running: false, progress: null, error: message });
      get().alert(message);
    };
    // 1. size check, before any byte is downloaded
    let plan;
    try {
      plan = await get().inference.plan({ entry, override: s.settings.backend });
    } catch (e) {
      fail(`${entry.name} cannot run here: ${errorMessage(e)}`);
      return;
    }
    const variant = entry.variants[plan.dtype]!;
    let layout: UnetLayout;
    try {
      ({ layout } = chooseLayout(entry, variant));
    } catch (e) {
      fail(errorMessage(e));
      return;
    }
    const form = { ...get().sd.form };
    const guidance = form.guidance ?? defaultGuidance(entry);
    const cfgGuidance = !(entry.config as { time_cond_proj_dim?: number | null })?.time_cond_proj_dim && guidance > 1;
    const fit = checkSdFit({ entry, variant, layout, backend: plan.backend, gpu: await device.gpu(), deviceMemoryGiB: (navigator as { deviceMemory?: number }).deviceMemory, unetBatch: cfgGuidance ? 2 : 1 });
    if (!fit.ok) {
      fail(`Refused before downloading: ${fit.message}`);
      return;
    }
    // 2. files into the model cache, 3. sessions (the inference service: one model per family)
    const req = get().modelRequest(entry);
    patch({ progress: { done: 0, total: 1, text: `preparing ${entry.name}` } });
    let loaded: GenerateReport;
    try {
      loaded = (await get().inference.ensureSession(req, (message) => patch({ progress: { done: 0, total: 1, text: message } }))) as GenerateReport;
    } catch (e) {
      fail(get().sd.cancelRequested ? 'Cancelled while preparing the model' : errorMessage(e));
      return;
    }
    if (get().sd.cancelRequested) {
      fail('Cancelled while preparing the model');
      return;
    }
    const gp = planGallery(entry, loaded.hasLora, { prompt: form.prompt, negativePrompt: form.negativePrompt, seed: form.seed, numSeeds: form.numSeeds, steps: form.steps, guidance, side: 'both' });
    const total = gp.seeds.length * gp.sides.length * gp.steps;
    let done = 0;
    const onEvent = (e: GenerateEvent) => {
      if (e.kind === 'step') {
        done++;
        patch({ progress: { done, total, text: `seed ${e.seed} · ${e.side} · step ${e.step}/${e.total} (${Math.round(e.ms)} ms)` } });
      } else patch({ progress: { done, total, text: e.message } });
    };
    const id = `run-${Date.now().toString(36)}-${get().sd.seq + 1}`;
    patch({ seq: get().sd.seq + 1 });
    const run: GalleryRun = {
      id,
      created: new Date().toISOString(),
      prompt: gp.prompt,
      negativePrompt: gp.negativePrompt,
      steps: gp.steps,
      guidance: gp.guidance,
      seeds: [],
      sides: gp.sides,
      model: { id: entry.id, name: entry.name, weights: entry.weights, dtype: loaded.dtype, layout: loaded.layout, backend: loaded.backend },
      images: [],
      status: 'running',
    };
    patch({ report: loaded, runs: [run, ...get().sd.runs] });
    const worker = get().workers.sd();
    const out = await runGallery(
      {
        generate: (r, p, on) => worker.generate(r, p, on),
        score,
        cancelRequested: () => get().sd.cancelRequested,
      },
      req,
      gp,
      {
        onEvent,
        // each image is shown as soon as it is made (unscored); the seed's scores follow, then the run is saved
        onImage: async (seed, im, report) => {
          const img: GalleryImage = { side: im.side, seed, width: im.width, height: im.height, url: await pngDataUrl(im.png), sha256: im.sha256, totalMs: im.totalMs, stepMs: im.stepMs, timesteps: im.timesteps, file: im.file };
          patch({ report });
          updateRun(id, (r) => ({ ...r, images: [...r.images, img] }));
        },
        onSeed: async (seed, images, report) => {
          patch({ report });
          get().modelRan(entry.id, report);
          const scoreOf = new Map(images.map((im) => [im.side, im.score]));
          updateRun(id, (r) => ({
            ...r,
            seeds: [...r.seeds, seed],
            images: r.images.map((g) => (g.seed === seed && scoreOf.get(g.side) ? { ...g, score: scoreOf.get(g.side) } : g)),
          }));
          await saveRun(get, id);
        },
      },
    );
    updateRun(id, (r) => ({ ...r, status: out.status, message: out.message }));
    patch({ running: false, progress: null, error: out.status === 'error' ? out.message : undefined });
    if (out.status === 'error' && out.message) get().alert(out.message);
    await saveRun(get, id);
  }

  return {
    sd: {
      form: { prompt: DEFAULT_PROMPTS[0], negativePrompt: '', steps: 4, seed: 0, numSeeds: 2 },
      running: false,
      progress: null,
      report: null,
      runs: [],
      historyLoaded: false,
      seq: 0,
      cancelRequested: false,
    },

    setGenForm(p) {
      const f = { ...get().sd.form, ...p };
      f.steps = Math.min(8, Math.max(2, Math.round(f.steps)));
      f.numSeeds = Math.min(8, Math.max(1, Math.round(f.numSeeds)));
      f.seed = Math.max(0, Math.floor(f.seed) || 0);
      f.guidance = f.guidance !== undefined && Number.isFinite(f.guidance) ? Math.min(15, Math.max(0, f.guidance)) : undefined;
      patch({ form: f });
    },

    async generateRun() {
      if (get().sd.running || !get().sd.historyLoaded) return;
      try {
        await galleryRun();
      } catch (e) {
        // a worker that died, a PNG that could not be encoded…: say so, keep the earlier runs, unlock the form
        const message = `Generation failed: ${errorMessage(e)}`;
        const running = get().sd.runs.filter((r) => r.status === 'running').map((r) => r.id);
        set((st) => ({ sd: { ...st.sd, running: false, progress: null, error: message, runs: st.sd.runs.map((r) => (r.status === 'running' ? { ...r, status: 'error' as const, message } : r)) } }));
        get().alert(message);
        for (const id of running) await saveRun(get, id);
      }
    },

    async generatePrewarm() {
      const s = get();
      const entry = chosenModel(s, 'sd');
      if (!entry || s.sd.running) return;
      try {
        const req = s.modelRequest(entry);
        const plan = await s.inference.plan(req);
        if (!downloadedVariants(entry, entrySource(entry, get().source), get().stored).includes(plan.dtype)) return;
        const variant = entry.variants[plan.dtype]!;
        const { layout } = chooseLayout(entry, variant);
        const cfg = !(entry.config as { time_cond_proj_dim?: number | null })?.time_cond_proj_dim && (get().sd.form.guidance ?? defaultGuidance(entry)) > 1;
        if (!checkSdFit({ entry, variant, layout, backend: plan.backend, gpu: await device.gpu(), deviceMemoryGiB: (navigator as { deviceMemory?: number }).deviceMemory, unetBatch: cfg ? 2 : 1 }).ok) return;
        get().modelRan(entry.id, await s.inference.ensureSession(req));
      } catch {
        /* prewarming is best effort: Generate reports any problem */
      }
    },

    async cancelGenerate() {
      if (!get().sd.running) return;
      patch({ cancelRequested: true, progress: { ...(get().sd.progress ?? { done: 0, total: 1 }), text: 'cancelling…' } });
      // a download in flight stops too (the run then ends with "Cancelled while preparing the model")
      const d = get().download;
      if (d && !d.done && !d.error && d.modelId === chosenModel(get(), 'sd')?.id) get().cancelDownload();
      try {
        await get().workers.sd().cancel();
      } catch (e) {
        get().alert(`Cancelling failed: ${errorMessage(e)}`);
      }
    },
  };
};
