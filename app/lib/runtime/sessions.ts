/**
 * ONNX Runtime session creation shared by every model family, in a worker and in Node alike: plan (execution-plan.ts),
 * create one session per graph role of the planned variant, and on a WebGPU failure fall back to WASM with the cause
 * in the report (never hidden). ORT itself, the device facts and the file bytes come from an injected OrtHost
 * (app/platform/browser/ort.ts, app/platform/node/ort.ts), so this module touches no platform API.
 */
import type * as OrtModule from 'onnxruntime-web';
import type { Dtype, ModelEntry, ModelFile } from '../models/manifest-types';
import type { ModelSource } from '../models/sources';
import { fallbackToWasm, planExecution, type BackendOverride, type ExecutionInputs, type ExecutionPlan } from './execution-plan';
import type { RuntimeReport } from './report';
import type { EngineChoice } from './webgpu-engine';

export type Ort = typeof OrtModule;
export type Session = OrtModule.InferenceSession;
export type OrtTensor = OrtModule.Tensor;

/** How an engine gets a model file's bytes (browser: the model cache; Node: the models folder). */
export type FileReader = (file: ModelFile) => Promise<Uint8Array>;

/** What a platform supplies to run models. */
export interface OrtHost {
  /**
   * The one ORT instance (browser: the build of the worker's WebGPU engine, /ort/ort.min.mjs for JSEP or
   * /ort/ort.webgpu.min.mjs for the native EP; Node: onnxruntime-web's Node build). Always the same module.
   */
  ort(): Promise<Ort>;
  /**
   * Which build ort() is and why, the reasons for the backend setting `override` of this request (browser workers;
   * absent in Node, whose build has no WebGPU).
   */
  engine?(override?: BackendOverride): Promise<EngineChoice>;
  /** The facts a plan needs for this model on this device (GPU, isolation, cores, the dtypes on offer). */
  planInputs(entry: ModelEntry, override: BackendOverride): Promise<ExecutionInputs>;
  /** Reader of the model files of a source. */
  reader(source: ModelSource): FileReader;
  /** A fixed WASM thread count (the CLI's --threads) instead of the plan's. */
  numThreads?: number;
  /**
   * Dtypes of `entry` whose files are all available to `reader` (downloaded and verified). A WebGPU -> WASM fallback
   * chooses only among them (fallbackToWasm); without it every dtype of the manifest is assumed readable.
   */
  downloadedDtypes?(entry: ModelEntry, source: ModelSource): Promise<Dtype[]>;
}

export interface LoadedGraphs {
  sessions: Record<string, Session>;
  report: RuntimeReport;
}

/** Milliseconds from a monotonic clock where there is one (page, worker, Node all have performance.now). */
export function nowMs(): number {
  return globalThis.performance?.now() ?? Date.now();
}

export interface SessionFactory {
  /**
   * One session per ONNX graph role (e.g. ['image_encoder', 'text_encoder']) of the planned variant of `entry`.
   * On WebGPU failure: release what was created, plan again for WASM with the cause in the reasons, and retry.
   * Throws when the variant lacks a role, a file cannot be read, or ORT cannot create a session.
   */
  create(entry: ModelEntry, roles: string[], override: BackendOverride, source: ModelSource, onProgress?: (stage: string) => void): Promise<LoadedGraphs>;
}

/** The session factory of one engine (one per worker or CLI process: it sets ORT's WASM thread count once). */
export function createSessionFactory(host: OrtHost): SessionFactory {
  // ORT's WASM thread count is global to the instance and only read when the WASM module first starts: set it once.
  let threadsSet = false;
  return {
    async create(entry, roles, override, source, onProgress) {
      const ort = await host.ort();
      const engine = await host.engine?.(override);
      const inputs = await host.planInputs(entry, override);
      let plan: ExecutionPlan = planExecution(inputs);
      // The build's reason first: which engine would run WebGPU (or why it does not matter).
      if (engine) plan = { ...plan, reasons: [...engine.reasons, ...plan.reasons] };
      if (host.numThreads) plan = { ...plan, numThreads: host.numThreads };
      if (!threadsSet) {
        ort.env.wasm.numThreads = plan.numThreads;
        threadsSet = true;
      }
      const readFile = host.reader(source);
      let fellBack = false;
      const t0 = nowMs();
      let sessions: Record<string, Session>;
      try {
        sessions = await createFor(ort, entry, roles, plan, readFile, onProgress);
      } catch (e) {
        if (plan.backend !== 'webgpu') throw e;
        plan = fallbackToWasm(plan, e, inputs, await host.downloadedDtypes?.(entry, source));
        fellBack = true;
        onProgress?.('WebGPU failed; creating WASM session');
        sessions = await createFor(ort, entry, roles, plan, readFile, onProgress);
      }
      const report: RuntimeReport = {
        modelId: entry.id,
        backend: plan.backend,
        dtype: plan.dtype,
        numThreads: plan.numThreads,
        ...(engine ? { engine: engine.engine, ortBuild: engine.build.label } : {}),
        gpu: inputs.gpu,
        reasons: plan.reasons,
        fellBack,
        sessionCreateMs: Math.round(nowMs() - t0),
        crossOriginIsolated: inputs.crossOriginIsolated,
      };
      return { sessions, report };
    },
  };
}

async function createFor(
  ort: Ort,
  entry: ModelEntry,
  roles: string[],
  plan: ExecutionPlan,
  readFile: FileReader,
  onProgress?: (stage: string) => void,
): Promise<Record<string, Session>> {
  const variant = entry.variants[plan.dtype];
  if (!variant) throw new Error(`${entry.name}: no ${plan.dtype} variant`);
  const out: Record<string, Session> = {};
  try {
    for (const role of roles) {
      const file = variant.files.find((f) => f.role === role);
      if (!file) throw new Error(`${entry.name} (${plan.dtype}): the manifest lists no '${role}' file`);
      onProgress?.(`reading ${file.path}`);
      const bytes = await readFile(file);
      const external = [];
      for (const ext of file.external_data ?? []) {
        external.push({ path: ext.path.split('/').pop()!, data: await readFile({ ...ext, role: `${role}-data` }) });
      }
      onProgress?.(`creating ${role} session on ${plan.backend}`);
      out[role] = await ort.InferenceSession.create(bytes, {
        executionProviders: [plan.backend],
        graphOptimizationLevel: 'all',
        ...(external.length ? { externalData: external } : {}),
      });
    }
    return out;
  } catch (e) {
    await Promise.all(Object.values(out).map((s) => s.release().catch(() => undefined)));
    throw e;
  }
}

/**
 * Lazily created, shared sessions per model request key, released by model id. The one place an engine keeps state:
 * a failed load is forgotten so the next call retries.
 */
export class SessionPool<L extends { release(): Promise<unknown> }> {
  private readonly loaded = new Map<string, { modelId: string; p: Promise<L> }>();

  get(key: string, modelId: string, make: () => Promise<L>): Promise<L> {
    let hit = this.loaded.get(key);
    if (!hit) {
      hit = { modelId, p: make() };
      this.loaded.set(key, hit);
      const mine = hit;
      hit.p.catch(() => {
        if (this.loaded.get(key) === mine) this.loaded.delete(key);
      });
    }
    return hit.p;
  }

  /** Release every entry of modelId (all when undefined). */
  async release(modelId?: string): Promise<void> {
    const drop = [...this.loaded].filter(([, v]) => modelId === undefined || v.modelId === modelId);
    for (const [k] of drop) this.loaded.delete(k);
    await Promise.all(drop.map(([, v]) => v.p.then((l) => l.release()).catch(() => undefined)));
  }

  /** Model ids with a session (or one being created). */
  modelIds(): string[] {
    return [...new Set([...this.loaded.values()].map((v) => v.modelId))];
  }
}

/** The pool key of a request: the model, the backend setting and the source (a local folder without its blobs). */
export function requestKey(req: { entry: ModelEntry; override: BackendOverride; source: ModelSource }): string {
  const src = req.source.kind === 'local' ? { kind: 'local', name: req.source.name } : req.source;
  return `${req.entry.id}|${req.override}|${JSON.stringify(src)}`;
}
