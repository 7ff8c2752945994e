/**
 * Generate slice: the side-by-side base vs LoRA gallery. Each run = one prompt, N seeds, base and LoRA images from
 * the same initial latents (same seed), each scored by the loaded classifier; history kept in IndexedDB across
 * reloads (idb-keyval), deletable; export as a grid PNG + JSON record (app/lib/generate/record.ts): the history
 * and export actions are in gallery.ts.
 * The size check runs here BEFORE any download (and again in the worker before any session).
 */
import type { GenerateEvent, GenerateReport, ImageScore, Side, UnetLayout } from '../lib/generate';
import { checkSdFit, chooseLayout, defaultGeneratorId } from '../lib/generate';
import type { ClassifierEngine } from '../lib/classify/engine';
import { sha256Hex } from '../lib/models/hashing';
import { errorMessage } from '../lib/runtime/outcome';
import { browserDevice } from '../platform/browser/ort';
import { rgbaToPng } from '../platform/browser/gallery';
import { persistGallery } from './gallery';
import { classifierEntry } from './selectors';
import type { AppState, SliceCreator } from './state';

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
  guidance: number;
  seed: number;
  numSeeds: number;
}

export interface GenerateState {
  modelId?: string;
  form: GenerateForm;
  running: boolean;
  progress: { done: number; total: number; text: string } | null;
  report: GenerateReport | null;
  error?: string;
  runs: GalleryRun[];
  historyLoaded: boolean;
  /** Counter for run ids. */
  seq: number;
  /** Set by cancelGenerate: the seed loop stops before its next seed (the worker stops its current step loop). */
  cancelRequested: boolean;
}

export interface GenerateSlice {
  gen: GenerateState;
  setGenForm(p: Partial<GenerateForm>): void;
  setGenModel(id: string): void;
  generateRun(): Promise<void>;
  cancelGenerate(): Promise<void>;
}

export function generatorEntry(s: Pick<AppState, 'manifest' | 'gen'>) {
  const id = s.gen.modelId ?? (s.manifest ? defaultGeneratorId(s.manifest) : undefined);
  return s.manifest?.models.find((m) => m.id === id && m.family === 'sd');
}

export const createGenerateSlice: SliceCreator<GenerateSlice> = (set, get) => {
  const device = browserDevice();
  const patch = (p: Partial<GenerateState>) => set((st) => ({ gen: { ...st.gen, ...p } }));
  const persist = () => persistGallery(get);
  const updateRun = (id: string, f: (r: GalleryRun) => GalleryRun) =>
    set((st) => ({ gen: { ...st.gen, runs: st.gen.runs.map((r) => (r.id === id ? f(r) : r)) } }));

  async function score(images: { rgba: Uint8ClampedArray; width: number; height: number }[]): Promise<(ImageScore | undefined)[]> {
    const cls = classifierEntry(get());
    if (!cls || !images.length) return images.map(() => undefined);
    const report = await get().ensureClassifierLoaded();
    if (!report) return images.map(() => undefined);
    const req = get().modelRequest(cls);
    let out;
    try {
      out = await get().inference.run(req, (e: ClassifierEngine) => e.classify(req, images.map((i) => ({ width: i.width, height: i.height, data: i.rgba })), { heatmap: false }));
    } catch (e) {
      get().alert(`Scoring the generated images failed: ${errorMessage(e)}`);
      return images.map(() => undefined);
    }
    const labels = cls.labels ?? ['NORMAL', 'PNEUMONIA'];
    return out.results.map((r) => ({
      classifierId: cls.id,
      classifierWeights: cls.weights,
      label: r.predicted,
      positiveProbability: r.positiveProbability ?? r.probabilities[labels.length - 1],
    }));
  }

  async function runGallery(): Promise<void> {
    const s = get();
    const entry = generatorEntry(s);
    if (!entry) {
      patch({ error: 'No text-to-image (sd) model in the model list' });
      return;
    }
    patch({ running: true, error: undefined, progress: { done: 0, total: 1, text: 'checking the model fits' } });
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
    let hasLora: boolean;
    try {
      ({ layout, hasLora } = chooseLayout(entry, variant));
    } catch (e) {
      fail((e as Error).message);
      return;
    }
    const cfgGuidance = !(entry.config as { time_cond_proj_dim?: number | null })?.time_cond_proj_dim && s.gen.form.guidance > 1;
    const fit = checkSdFit({
      entry,
      variant,
      layout,
      backend: plan.backend,
      gpu: await device.gpu(),
      deviceMemoryGiB: (navigator as { deviceMemory?: number }).deviceMemory,
      unetBatch: cfgGuidance ? 2 : 1,
    });
    if (!fit.ok) {
      fail(`Refused before downloading: ${fit.message}`);
      return;
    }
    // 2. files into the model cache, 3. sessions (the inference service: one model per family)
    const form = { ...get().gen.form };
    const sides: Side[] = hasLora ? ['base', 'lora'] : ['base'];
    const seeds = Array.from({ length: form.numSeeds }, (_, i) => form.seed + i);
    const req = get().modelRequest(entry);
    patch({ progress: { done: 0, total: 1, text: `preparing ${entry.name}` } });
    let loadedReport: GenerateReport;
    try {
      loadedReport = (await get().inference.ensureSession(req, (message) => patch({ progress: { done: 0, total: 1, text: message } }))) as GenerateReport;
    } catch (e) {
      fail(errorMessage(e));
      return;
    }
    const worker = get().workers.generate();
    const total = seeds.length * sides.length * form.steps;
    let done = 0;
    const onEvent = (e: GenerateEvent) => {
      if (e.kind === 'step') {
        done++;
        patch({ progress: { done, total, text: `seed ${e.seed} · ${e.side} · step ${e.step}/${e.total} (${Math.round(e.ms)} ms)` } });
      } else patch({ progress: { done, total, text: e.message } });
    };
    const loaded = { value: loadedReport };
    const id = `run-${get().gen.seq + 1}`;
    patch({ seq: get().gen.seq + 1 });
    const run: GalleryRun = {
      id,
      created: new Date().toISOString(),
      prompt: form.prompt,
      negativePrompt: form.negativePrompt,
      steps: form.steps,
      guidance: form.guidance,
      seeds: [],
      sides,
      model: { id: entry.id, name: entry.name, weights: entry.weights, dtype: loaded.value.dtype, layout: loaded.value.layout, backend: loaded.value.backend },
      images: [],
      status: 'running',
    };
    patch({ report: loaded.value, runs: [run, ...get().gen.runs] });
    let status: GalleryRun['status'] = 'done';
    let message: string | undefined;
    patch({ cancelRequested: false });
    for (const seed of seeds) {
      if (get().gen.cancelRequested) {
        status = 'cancelled';
        message = `Cancelled: before seed ${seed}`;
        break;
      }
      const out = await worker.generate(req, { prompt: form.prompt, negativePrompt: form.negativePrompt, steps: form.steps, guidanceScale: form.guidance, seed, sides }, onEvent);
      if (!out.ok) {
        status = out.message.startsWith('Cancelled') ? 'cancelled' : 'error';
        message = out.message;
        break;
      }
      patch({ report: out.value.report });
      get().modelRan(entry.id, out.value.report);
      const scores = await score(out.value.images);
      const imgs: GalleryImage[] = [];
      for (const [k, im] of out.value.images.entries()) {
        const { url, blob } = await rgbaToPng(im.width, im.height, im.rgba);
        imgs.push({ side: im.side, seed, width: im.width, height: im.height, url, sha256: await sha256Hex(new Uint8Array(await blob.arrayBuffer())), totalMs: im.totalMs, stepMs: im.stepMs, score: scores[k] });
      }
      updateRun(id, (r) => ({ ...r, seeds: [...r.seeds, seed], images: [...r.images, ...imgs] }));
    }
    updateRun(id, (r) => ({ ...r, status, message }));
    patch({ running: false, progress: null, error: status === 'error' ? message : undefined });
    if (status === 'error' && message) get().alert(message);
    await persist();
  }

  return {
    gen: {
      form: { prompt: DEFAULT_PROMPTS[0], negativePrompt: '', steps: 4, guidance: 1, seed: 0, numSeeds: 2 },
      running: false,
      progress: null,
      report: null,
      runs: [],
      historyLoaded: false,
      seq: 0,
      cancelRequested: false,
    },

    setGenForm(p) {
      const f = { ...get().gen.form, ...p };
      f.steps = Math.min(8, Math.max(2, Math.round(f.steps)));
      f.numSeeds = Math.min(8, Math.max(1, Math.round(f.numSeeds)));
      f.seed = Math.max(0, Math.floor(f.seed) || 0);
      f.guidance = Number.isFinite(f.guidance) ? Math.min(15, Math.max(0, f.guidance)) : 1;
      patch({ form: f });
    },

    setGenModel(id) {
      patch({ modelId: id, report: null, error: undefined });
    },

    async generateRun() {
      if (get().gen.running) return;
      try {
        await runGallery();
      } catch (e) {
        // a worker that died, a PNG that could not be encoded…: say so, keep the earlier runs, unlock the form
        const message = `Generation failed: ${errorMessage(e)}`;
        set((st) => ({ gen: { ...st.gen, running: false, progress: null, error: message, runs: st.gen.runs.map((r) => (r.status === 'running' ? { ...r, status: 'error' as const, message } : r)) } }));
        get().alert(message);
        await persist();
      }
    },

    async cancelGenerate() {
      if (!get().gen.running) return;
      patch({ cancelRequested: true, progress: { ...(get().gen.progress ?? { done: 0, total: 1 }), text: 'cancelling after the current step…' } });
      await get().workers.generate().cancel();
    },
  };
};
