import { useAppStore } from '../store';
import type { BackendOverride, WebGpuEngineSetting } from '../lib/runtime';
import { describeGpu } from '../lib/runtime';

/** Backend setting and, per loaded model, what actually runs where and why. */
export function RuntimeStatus() {
  const backend = useAppStore((s) => s.settings.backend);
  const setBackend = useAppStore((s) => s.setBackend);
  const engine = useAppStore((s) => s.settings.webgpuEngine);
  const setWebgpuEngine = useAppStore((s) => s.setWebgpuEngine);
  const models = useAppStore((s) => s.models);
  const manifest = useAppStore((s) => s.manifest);
  const entries = Object.entries(models);
  return (
    <section className="panel runtime" aria-labelledby="rt-h">
      <h2 id="rt-h">Runtime</h2>
      <label>
        Backend{' '}
        <select value={backend} onChange={(e) => setBackend(e.target.value as BackendOverride)} data-testid="backend-select">
          <option value="auto">auto</option>
          <option value="webgpu">WebGPU</option>
          <option value="wasm">WASM</option>
        </select>
      </label>{' '}
      <label title="Which onnxruntime-web build runs WebGPU: JSEP (ort.min.mjs) or the native WebGPU EP (ort.webgpu.min.mjs)">
        WebGPU engine{' '}
        <select
          value={engine}
          onChange={(e) => setWebgpuEngine(e.target.value as WebGpuEngineSetting)}
          data-testid="webgpu-engine-select"
        >
          <option value="auto">auto</option>
          <option value="jsep">JSEP</option>
          <option value="native">native WebGPU EP</option>
        </select>
      </label>
      <span className="muted small">
        {' '}
        cross-origin isolated: {String(globalThis.crossOriginIsolated === true)}
      </span>
      {!entries.length && <p className="muted small">No model loaded yet.</p>}
      {entries.map(([id, m]) => {
        const name = manifest?.models.find((e) => e.id === id)?.name ?? id;
        const r = m.report;
        return (
          <div key={id} className="runtime-model" data-testid={`runtime-${id}`}>
            <strong>{name}</strong>{' '}
            {m.status === 'loading' && <span className="muted">loading… {m.message}</span>}
            {m.status === 'error' && <span className="error-text">{m.message}</span>}
            {r && (
              <dl className="facts">
                <dt>backend</dt>
                <dd data-testid="runtime-backend">{r.backend}</dd>
                <dt>ORT build</dt>
                <dd data-testid="runtime-engine" data-engine={r.engine ?? ''}>
                  {r.ortBuild ?? '—'}
                </dd>
                <dt>adapter</dt>
                <dd data-testid="runtime-adapter">{describeGpu(r.gpu)}</dd>
                <dt>shader-f16</dt>
                <dd>{r.gpu.available ? (r.gpu.shaderF16 ? 'yes' : 'no') : '—'}</dd>
                <dt>dtype</dt>
                <dd data-testid="runtime-dtype">{r.dtype}</dd>
                <dt>threads</dt>
                <dd data-testid="runtime-threads">{r.backend === 'wasm' ? r.numThreads : '—'}</dd>
                <dt>session</dt>
                <dd data-testid="runtime-session-ms">{r.sessionCreateMs} ms</dd>
                <dt>last inference</dt>
                <dd data-testid="runtime-inference-ms">{r.lastInferenceMs != null ? `${r.lastInferenceMs} ms` : '—'}</dd>
              </dl>
            )}
            {r && (
              <ul className="reasons small" data-testid="runtime-reasons">
                {r.fellBack && <li className="error-text">fell back from WebGPU to WASM</li>}
                {r.reasons.map((x, i) => (
                  <li key={i}>{x}</li>
                ))}
              </ul>
            )}
          </div>
        );
      })}
    </section>
  );
}
