import { useState } from 'react';
import { useAppStore } from '../store';

/**
 * "Add a model from the Hub": a repo id (hf:owner/name[@revision]) read from the Hub base URL, or a repo URL on a
 * mirror. The store reads its config and file list first (app/services/hub.ts) and says what is missing before any
 * graph is downloaded; an added model is listed under Models and chosen in its family's view.
 */
export function HubModelPicker() {
  const hubBase = useAppStore((s) => s.hubBase);
  const setHubBase = useAppStore((s) => s.setHubBase);
  const add = useAppStore((s) => s.addHubModel);
  const addFolder = useAppStore((s) => s.addHubFolder);
  const remove = useAppStore((s) => s.removeHubModel);
  const state = useAppStore((s) => s.hubAdd);
  const models = useAppStore((s) => s.hubModels);
  const [spec, setSpec] = useState('');
  const [base, setBase] = useState(hubBase);
  const checking = state?.status === 'checking';
  return (
    <section className="panel" aria-labelledby="hub-h">
      <h2 id="hub-h">Add a model from the Hub</h2>
      <p className="small muted">
        CLIP / SigLIP (zero-shot labels), SAM / SlimSAM (segmentation) or an image classifier exported to ONNX in the transformers.js layout (onnx/…). External
        models: their weights, licence and training data are not checked by this project.
      </p>
      <form
        className="row"
        onSubmit={(e) => {
          e.preventDefault();
          if (spec.trim() && !checking) void add(spec.trim());
        }}
      >
        <input
          type="text"
          placeholder="hf:Xenova/clip-vit-base-patch32 or https://mirror/owner/name"
          value={spec}
          onChange={(e) => setSpec(e.target.value)}
          aria-label="Hub repo id or URL"
          data-testid="hub-repo-input"
          style={{ minWidth: '22rem' }}
        />
        <button type="submit" disabled={checking || !spec.trim()} data-testid="hub-add">
          {checking ? 'Checking…' : 'Add'}
        </button>
        <label className="button">
          Local folder in this layout…
          <input
            type="file"
            multiple
            data-testid="hub-folder-input"
            ref={(el) => el?.setAttribute('webkitdirectory', '')}
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              if (files.length) await addFolder(files);
            }}
          />
        </label>
      </form>
      <form
        className="row small"
        style={{ marginTop: '0.5rem' }}
        onSubmit={(e) => {
          e.preventDefault();
          setHubBase(base);
        }}
      >
        <label>
          Hub base URL{' '}
          <input type="url" value={base} onChange={(e) => setBase(e.target.value)} data-testid="hub-base-input" aria-label="Hub base URL" />
        </label>
        <button type="submit" disabled={base === hubBase} data-testid="hub-base-set">
          Use
        </button>
      </form>
      {state && state.status !== 'checking' && (
        <p className={`small ${state.status === 'error' ? 'error-text' : ''}`} data-testid="hub-add-state" data-status={state.status}>
          {state.status === 'added' ? `Added ${state.message}` : state.message}
        </p>
      )}
      {models.length > 0 && (
        <ul className="small" data-testid="hub-models">
          {models.map((m) => (
            <li key={m.id}>
              <strong>{m.id}</strong> · {m.family} · {m.hub.architecture} · licence {m.license} · commit {m.hub.revision.slice(0, 12)}{' '}
              <button type="button" onClick={() => void remove(m.id)} data-testid={`hub-remove-${m.id}`}>
                Remove
              </button>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
