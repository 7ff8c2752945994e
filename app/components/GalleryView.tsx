import { useEffect } from 'react';
import { useAppStore } from '../store';
import { DEFAULT_PROMPTS, defaultGuidance, type GalleryImage, type GalleryRun } from '../store/sd';
import { chosenModel } from '../store/selectors';
import { WeightsBadge } from './WeightsBadge';
import type { WeightsKind } from '../lib/models/manifest-types';
import { modelDisplayName } from '../lib/models/manifest';

/** Text-to-image gallery: base and LoRA side by side from the same seed, scored by the classifier, with history. */
export function GalleryView() {
  const gen = useAppStore((s) => s.sd); // the text-to-image (family sd) state
  const manifest = useAppStore((s) => s.manifest);
  const entry = useAppStore((s) => chosenModel(s, 'sd'));
  const setForm = useAppStore((s) => s.setGenForm);
  const chooseModel = useAppStore((s) => s.chooseModel);
  const run = useAppStore((s) => s.generateRun);
  const cancel = useAppStore((s) => s.cancelGenerate);
  const clear = useAppStore((s) => s.clearGallery);
  const loadHistory = useAppStore((s) => s.loadGalleryHistory);
  useEffect(() => {
    if (!gen.historyLoaded) void loadHistory();
  }, [gen.historyLoaded, loadHistory]);
  // a cached model's sessions are created while the user reads the form (never a download: issue 21.1)
  const prewarm = useAppStore((s) => s.generatePrewarm);
  useEffect(() => {
    if (entry) void prewarm();
  }, [entry?.id, prewarm]);
  const sdModels = manifest?.models.filter((m) => m.family === 'sd') ?? [];
  const f = gen.form;
  const pct = gen.progress ? Math.round((100 * gen.progress.done) / Math.max(1, gen.progress.total)) : 0;

  return (
    <div className="gallery-layout">
      <section className="panel gallery-form" aria-label="Generate">
        <h2>Generate</h2>
        <label>
          Model
          <select data-testid="gen-model" value={entry?.id ?? ''} onChange={(e) => void chooseModel('sd', e.target.value)} disabled={gen.running}>
            {sdModels.map((m) => (
              <option key={m.id} value={m.id}>
                {modelDisplayName(m)}
              </option>
            ))}
          </select>
        </label>
        {entry && <WeightsBadge weights={entry.weights} />}
        <label>
          Prompt
          <input data-testid="gen-prompt" list="gen-prompts" value={f.prompt} onChange={(e) => setForm({ prompt: e.target.value })} disabled={gen.running} />
          <datalist id="gen-prompts">
            {DEFAULT_PROMPTS.map((p) => (
              <option key={p} value={p} />
            ))}
          </datalist>
        </label>
        <label>
          Negative prompt (CFG only)
          <input data-testid="gen-negative" value={f.negativePrompt} onChange={(e) => setForm({ negativePrompt: e.target.value })} disabled={gen.running} />
        </label>
        <div className="gallery-row">
          <label>
            Steps <output>{f.steps}</output>
            <input data-testid="gen-steps" type="range" min={2} max={8} step={1} value={f.steps} onChange={(e) => setForm({ steps: Number(e.target.value) })} disabled={gen.running} />
          </label>
          <label>
            Guidance
            <input
              data-testid="gen-guidance"
              type="number"
              min={0}
              max={15}
              step={0.5}
              value={f.guidance ?? ''}
              placeholder={entry ? `${defaultGuidance(entry)} (model default)` : ''}
              onChange={(e) => setForm({ guidance: e.target.value === '' ? undefined : Number(e.target.value) })}
              disabled={gen.running}
            />
          </label>
        </div>
        <div className="gallery-row">
          <label>
            Seed
            <input data-testid="gen-seed" type="number" min={0} step={1} value={f.seed} onChange={(e) => setForm({ seed: Number(e.target.value) })} disabled={gen.running} />
          </label>
          <label>
            Seeds
            <input data-testid="gen-nseeds" type="number" min={1} max={8} step={1} value={f.numSeeds} onChange={(e) => setForm({ numSeeds: Number(e.target.value) })} disabled={gen.running} />
          </label>
        </div>
        <p className="muted small">
          Guidance: LCM-LoRA models use classifier-free guidance above 1 (two UNet passes); models with a guidance embedding take it as an input. Same seed → same initial latents for both sides
          (and as diffusers with torch.Generator().manual_seed).
        </p>
        <div className="gallery-row">
          <button type="button" data-testid="gen-run" onClick={() => void run()} disabled={gen.running || !entry || !gen.historyLoaded} title={gen.historyLoaded ? undefined : 'reading the gallery history…'}>
            Generate
          </button>
          <button type="button" data-testid="gen-cancel" onClick={() => void cancel()} disabled={!gen.running}>
            Cancel
          </button>
        </div>
        {gen.progress && (
          <div className="gallery-progress" data-testid="gen-progress">
            <progress max={100} value={pct} />
            <span className="small">{gen.progress.text}</span>
          </div>
        )}
        {gen.error && (
          <p className="error-text" data-testid="gen-error" role="alert">
            {gen.error}
          </p>
        )}
        {gen.report && (
          <dl className="small gallery-report" data-testid="gen-report">
            <dt>backend</dt>
            <dd data-testid="gen-backend">{gen.report.backend}</dd>
            <dt>dtype</dt>
            <dd>{gen.report.dtype}</dd>
            <dt>UNet layout</dt>
            <dd data-testid="gen-layout">{gen.report.layout === 'scaled' ? 'one UNet, lora_scale 0 / 1' : 'two UNets (base, LoRA)'}</dd>
            <dt>GPU-resident loop</dt>
            <dd>{gen.report.gpuResident ? 'yes (gpu-buffer between steps)' : 'no (CPU tensors)'}</dd>
            <dt>memory</dt>
            <dd>{gen.report.fit.message}</dd>
            {gen.report.reasons.length > 0 && (
              <>
                <dt>why</dt>
                <dd>{gen.report.reasons.join('; ')}</dd>
              </>
            )}
          </dl>
        )}
      </section>
      <section className="gallery-history" aria-label="Gallery history">
        <div className="gallery-row">
          <h2>History</h2>
          <button type="button" data-testid="gallery-clear" onClick={() => void clear()} disabled={!gen.runs.some((r) => r.status !== 'running')}>
            Delete all
          </button>
        </div>
        {gen.runs.length === 0 && <p className="muted" data-testid="gallery-empty">No generations yet.</p>}
        {gen.runs.map((r) => (
          <RunCard key={r.id} run={r} />
        ))}
      </section>
    </div>
  );
}

function RunCard({ run }: { run: GalleryRun }) {
  const del = useAppStore((s) => s.deleteGalleryRun);
  const exp = useAppStore((s) => s.exportGalleryRun);
  const random = run.model.weights === 'random-fixture';
  return (
    <article className="panel gallery-run" data-testid="gallery-run" data-status={run.status}>
      <header className="gallery-run-head">
        <div>
          <strong data-testid="gallery-run-prompt">“{run.prompt}”</strong>
          <div className="muted small">
            {run.model.name} · {run.steps} steps · guidance {run.guidance} · seeds {run.seeds.join(', ') || '—'} · {run.model.backend} {run.model.dtype} · {new Date(run.created).toLocaleString()}
          </div>
          {run.status !== 'done' && (
            <div className={run.status === 'error' ? 'error-text small' : 'muted small'} data-testid="gallery-run-status">
              {run.status}
              {run.message ? `: ${run.message}` : ''}
            </div>
          )}
        </div>
        <div className="gallery-row">
          <button type="button" data-testid="gallery-export" onClick={() => void exp(run.id)} disabled={run.images.length === 0}>
            Export grid
          </button>
          <button type="button" data-testid="gallery-delete" onClick={() => void del(run.id)} disabled={run.status === 'running'}>
            Delete
          </button>
        </div>
      </header>
      <table className="gallery-grid">
        <thead>
          <tr>
            <th>seed</th>
            {run.sides.map((s) => (
              <th key={s}>{s === 'base' ? 'base' : 'LoRA'}</th>
            ))}
          </tr>
        </thead>
        <tbody>
          {run.seeds.map((seed) => (
            <tr key={seed}>
              <td>{seed}</td>
              {run.sides.map((side) => {
                const im = run.images.find((i) => i.seed === seed && i.side === side);
                return <td key={side}>{im && <ImageCell im={im} random={random} />}</td>;
              })}
            </tr>
          ))}
        </tbody>
      </table>
    </article>
  );
}

function ImageCell({ im, random }: { im: GalleryImage; random: boolean }) {
  return (
    <figure className="gallery-cell" data-testid="gallery-image" data-side={im.side} data-seed={im.seed}>
      <img src={im.url} alt={`${im.side} seed ${im.seed}`} width={Math.max(128, im.width)} height={Math.max(128, im.height)} style={{ imageRendering: im.width < 128 ? 'pixelated' : 'auto' }} />
      <figcaption className="small">
        {random && (
          <span className="badge badge-random" data-testid="gallery-random">
            RANDOM WEIGHTS — meaningless image
          </span>
        )}
        {im.score ? (
          <span data-testid="gallery-score">
            {im.score.label} · P(PNEUMONIA) {im.score.positiveProbability.toFixed(3)} <WeightsBadge weights={im.score.classifierWeights as WeightsKind} />
          </span>
        ) : (
          <span className="muted">not scored (no classifier loaded)</span>
        )}
        <span className="muted"> · {Math.round(im.totalMs)} ms</span>
      </figcaption>
    </figure>
  );
}
