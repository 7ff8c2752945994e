/**
 * The inference service: for any model family, "ensure downloaded -> ensure session -> run batch", and one loaded
 * model per family (switching to another model of a family releases the previous one's sessions). Free of React and
 * of the DOM: the platform pieces (where files come from, how a plan is made, the engines: comlink workers in the
 * app, in-process engines in `npm run label`) are injected. The app's store (app/store/models.ts) and the CLI
 * (app/cli/label.ts) both run models through it.
 *
 * Errors: an engine's failed Outcome, a plan that cannot run here, or a file that cannot be had all become a thrown
 * Error whose message names the model and the cause; the store's slices catch it and show it in the alert region.
 */
import type { ModelEntry, ModelFamily } from '../lib/models/manifest-types';
import type { DownloadProgress } from '../lib/models/downloader';
import type { ModelFiles } from '../lib/models/model-files';
import { planExecution, type ExecutionInputs, type ExecutionPlan } from '../lib/runtime/execution-plan';
import type { RuntimeReport } from '../lib/runtime/report';
import { errorMessage, unwrap, type FamilyEngine, type ModelRequest, type Outcome, type Progress } from '../lib/runtime/outcome';
import { RunQueue } from '../lib/runtime/run-queue';
import { requestKey } from '../lib/runtime/sessions';

export interface InferenceServiceOptions {
  files: ModelFiles;
  /** The facts a plan needs on the thread that downloads (the same function the engines plan with). */
  planInputs(entry: ModelEntry, override: ModelRequest['override']): Promise<ExecutionInputs>;
  /** Engines by family; a family without one cannot run ('no engine for family sd'). */
  engines: Partial<Record<ModelFamily, FamilyEngine>>;
  /** Told whenever a model's sessions were released (the store drops its 'ready' state). */
  onReleased?(modelId: string): void;
}

export type { ModelFiles };

export class InferenceService {
  /** The model whose sessions each family holds. */
  private readonly current = new Map<ModelFamily, string>();
  /** The request (requestKey) each family's sessions were last ensured for. */
  private readonly ensuredKey = new Map<ModelFamily, string>();

  constructor(private readonly opts: InferenceServiceOptions) {}

  /** Backend, dtype and threads this model will use here, with the reasons. Throws NoUsableVariantError. */
  async plan(req: Pick<ModelRequest, 'entry' | 'override'>): Promise<ExecutionPlan> {
    return planExecution(await this.opts.planInputs(req.entry, req.override));
  }

  engine<E extends FamilyEngine>(family: ModelFamily): E {
    const e = this.opts.engines[family];
    if (!e) throw new Error(`no engine for the model family '${family}'`);
    return e as E;
  }

  /** The variant this device will run is fully available to the engines (downloaded and verified). */
  async ensureDownloaded(req: ModelRequest, onProgress?: (p: DownloadProgress) => void): Promise<ExecutionPlan> {
    let plan: ExecutionPlan;
    try {
      plan = await this.plan(req);
    } catch (e) {
      throw new Error(`${req.entry.name} cannot run here: ${errorMessage(e)}`);
    }
    await this.opts.files.ensure(req.entry, plan.dtype, { onProgress });
    return plan;
  }

  /**
   * One operation at a time per family: "ensure this model's session, then call the engine" must not be split by
   * another model of the family taking the session over (a switch releases the previous model's sessions), or the
   * call would find its session released halfway (occlusion and zero-shot make several runs per call).
   */
  private readonly familyQueues = new Map<ModelFamily, RunQueue>();

  private inFamily<T>(family: ModelFamily, fn: () => Promise<T>): Promise<T> {
    let q = this.familyQueues.get(family);
    if (!q) this.familyQueues.set(family, (q = new RunQueue()));
    return q.run(fn);
  }

  /**
   * Files available, then the family's session for this model (created once, reused after). Another model of the
   * same family loaded before is released first: sessions do not pile up. Waits for the family's call in progress.
   */
  ensureSession(req: ModelRequest, onProgress?: Progress): Promise<RuntimeReport> {
    return this.inFamily(req.entry.family, () => this.ensureSessionNow(req, onProgress));
  }

  private async ensureSessionNow(req: ModelRequest, onProgress?: Progress): Promise<RuntimeReport> {
    await this.ensureDownloaded(req);
    const family = req.entry.family;
    const engine = this.engine(family);
    const prev = this.current.get(family);
    if (prev !== undefined && prev !== req.entry.id) {
      this.current.delete(family);
      this.ensuredKey.delete(family);
      await engine.release(prev);
      this.opts.onReleased?.(prev);
    }
    const report = unwrap(await engine.load(req, onProgress));
    this.current.set(family, req.entry.id);
    this.ensuredKey.set(family, requestKey(req));
    return report;
  }

  /**
   * ensureSession, then one call of the family's engine (classify, zeroShot, ...), with no other model of the family
   * loaded in between; its failure is thrown.
   */
  run<E extends FamilyEngine, R>(req: ModelRequest, call: (engine: E) => Promise<Outcome<R>>, onProgress?: Progress): Promise<R> {
    return this.inFamily(req.entry.family, async () => {
      // Ensured for this very request and not released since: the engine's call finds (or re-creates) its session
      // itself, so the extra round trip to its worker is skipped (20-40 ms of a warm drop under load).
      const family = req.entry.family;
      if (this.current.get(family) !== req.entry.id || this.ensuredKey.get(family) !== requestKey(req)) await this.ensureSessionNow(req, onProgress);
      return unwrap(await call(this.engine<E>(family)));
    });
  }

  /** Model ids that hold sessions now, by family. */
  loaded(): Partial<Record<ModelFamily, string>> {
    return Object.fromEntries(this.current) as Partial<Record<ModelFamily, string>>;
  }

  /** Release one model's sessions, or every session (backend or source changed, model deleted). */
  async release(modelId?: string): Promise<void> {
    const families = [...this.current].filter(([, id]) => modelId === undefined || id === modelId);
    for (const [family] of families) {
      this.current.delete(family);
      this.ensuredKey.delete(family);
    }
    if (modelId === undefined) await Promise.all(Object.values(this.opts.engines).map((e) => e?.reset()));
    else await Promise.all(families.map(([family]) => this.opts.engines[family]?.release(modelId)));
    for (const [, id] of families) this.opts.onReleased?.(id);
  }
}
