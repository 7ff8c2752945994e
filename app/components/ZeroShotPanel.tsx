import { useMemo } from 'react';
import { chosenModel, currentPromptSets, shownZeroShot, useAppStore } from '../store';
import { WeightsBadge } from './WeightsBadge';
import { modelDisplayName } from '../lib/models/manifest';
import { knownFindings } from '../lib/clip/known-findings';

export function ZeroShotPanel() {
  const manifest = useAppStore((s) => s.manifest);
  const chosenModelId = useAppStore((s) => s.chosenModelId);
  const entry = useAppStore((s) => chosenModel(s, 'clip'));
  const prompts = useAppStore((s) => s.prompts);
  // Derived outside the selector: a selector must return stable references (defaults are built fresh).
  const sets = useMemo(() => currentPromptSets({ manifest, chosenModelId, prompts }), [manifest, chosenModelId, prompts]);
  const setPrompts = useAppStore((s) => s.setPrompts);
  const resetPrompts = useAppStore((s) => s.resetPrompts);
  const chooseModel = useAppStore((s) => s.chooseModel);
  const run = useAppStore((s) => s.zeroShotCurrent);
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const z = useAppStore(shownZeroShot);
  const clips = manifest?.models.filter((m) => m.family === 'clip') ?? [];
  const known = knownFindings(entry);
  if (!clips.length) return null;
  return (
    <section className="panel" aria-labelledby="zs-h" data-testid="zero-shot">
      <h2 id="zs-h">Zero-shot labels</h2>
      <label>
        CLIP model{' '}
        <select value={entry?.id ?? ''} onChange={(e) => void chooseModel('clip', e.target.value)} data-testid="clip-select">
          {clips.map((m) => (
            <option key={m.id} value={m.id}>
              {modelDisplayName(m)}
            </option>
          ))}
        </select>
      </label>
      {known && (
        <p className="small muted" data-testid="zero-shot-known">
          {entry?.weights === 'trained' ? 'Trained here on chest X-rays; it' : 'It'} knows: {known.join(', ')}. Prompts about anything
          else (another body part, another finding) give meaningless scores.
        </p>
      )}
      <details className="prompts">
        <summary>Prompts ({sets.length} labels)</summary>
        {sets.map((set, i) => (
          <div key={i} className="prompt-set">
            <input
              aria-label={`Label ${i + 1}`}
              value={set.label}
              onChange={(e) => setPrompts(sets.map((x, j) => (j === i ? { ...x, label: e.target.value } : x)))}
            />
            <textarea
              aria-label={`Prompts for ${set.label}, one per line`}
              rows={Math.max(2, set.prompts.length)}
              value={set.prompts.join('\n')}
              onChange={(e) => setPrompts(sets.map((x, j) => (j === i ? { ...x, prompts: e.target.value.split('\n') } : x)))}
            />
            <button type="button" aria-label={`Remove label ${set.label}`} onClick={() => setPrompts(sets.filter((_, j) => j !== i))} disabled={sets.length <= 2}>
              −
            </button>
          </div>
        ))}
        <div className="row">
          <button type="button" onClick={() => setPrompts([...sets, { label: 'NEW LABEL', prompts: ['a chest X-ray showing …'] }])}>
            Add label
          </button>
          <button type="button" onClick={resetPrompts}>
            Defaults
          </button>
          <button type="button" onClick={() => void run()} disabled={!item}>
            Re-run
          </button>
        </div>
      </details>
      {item?.zeroShotRunning && <p className="muted">Labelling…</p>}
      {item?.zeroShotError && <p className="error-text">{item.zeroShotError}</p>}
      {z && (
        <div className="result" data-testid="zero-shot-result">
          <div className="prediction">
            <span className="muted small">auto_label</span>
            <span className={`pred pred-${z.autoLabel}`} data-testid="auto-label">
              {z.autoLabel}
            </span>
            <span className="confidence">{(z.confidence * 100).toFixed(1)}%</span>
          </div>
          <WeightsBadge weights={z.weights} />
          {z.weights === 'random-fixture' && (
            <p className="small error-text" data-testid="zero-shot-random-note">
              {entry?.name ?? 'This CLIP model'} has random weights (a test fixture): these labels mean nothing.
            </p>
          )}
          <p className="small muted" data-testid="zero-shot-scoring" data-scoring={z.scoring ?? 'softmax'}>
            {z.scoring === 'sigmoid'
              ? 'Independent probability per label (sigmoid, as SigLIP scores): they do not sum to 1, and several or none may be high.'
              : 'Probabilities over these labels (softmax): they sum to 1, so they only compare the labels given.'}
          </p>
          {z.temperatureNote && (
            <p className="small error-text" data-testid="zero-shot-temperature-note">
              {z.temperatureNote}
            </p>
          )}
          <table className="probs">
            <tbody>
              {Object.entries(z.probabilities).map(([label, p]) => (
                <tr key={label}>
                  <th>{label}</th>
                  <td>
                    <div className="bar">
                      <div style={{ width: `${(p * 100).toFixed(1)}%` }} />
                    </div>
                  </td>
                  <td className="num">{p.toFixed(4)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
