import { useEffect, useState } from 'react';
import { useAppStore } from '../store';
import { describeSource } from '../lib/models/sources';
import { downloadedVariants } from '../lib/models/model-cache';
import { formatBytes } from '../lib/runtime';
import { headlineMetrics, totalBytes } from '../lib/models/manifest';
import type { Dtype, ModelEntry } from '../lib/models/manifest-types';
import { quantizedVerdict } from '../lib/models/quantized';
import { WeightsBadge } from './WeightsBadge';
import { HubModelPicker } from './HubModelPicker';
import { entrySource } from '../lib/hub/source';

function eta(s: number | null | undefined): string {
  if (s == null) return 'estimating…';
  if (s < 1) return 'done soon';
  if (s < 90) return `${Math.round(s)} s left`;
  return `${Math.round(s / 60)} min left`;
}

function SourcePicker() {
  const setting = useAppStore((s) => s.settings.modelSource);
  const source = useAppStore((s) => s.source);
  const setModelSource = useAppStore((s) => s.setModelSource);
  const chooseLocalFolder = useAppStore((s) => s.chooseLocalFolder);
  const [repo, setRepo] = useState(setting.kind === 'hf' ? setting.repoUrl : '');
  const [rev, setRev] = useState(setting.kind === 'hf' ? (setting.revision ?? 'main') : 'main');
  return (
    <section className="panel" aria-labelledby="src-h">
      <h2 id="src-h">Model source</h2>
      <p className="small">
        Using <strong data-testid="model-source">{describeSource(source)}</strong>
      </p>
      <div className="row">
        <button type="button" onClick={() => setModelSource({ kind: 'app' })} disabled={setting.kind === 'app'}>
          App's own models
        </button>
        <label className="button">
          Local folder…
          <input
            type="file"
            multiple
            data-testid="model-folder-input"
            ref={(el) => el?.setAttribute('webkitdirectory', '')}
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              if (files.length) await chooseLocalFolder(files);
            }}
          />
        </label>
      </div>
      <form
        className="row"
        style={{ marginTop: '0.5rem' }}
        onSubmit={(e) => {
          e.preventDefault();
          if (repo.trim()) void setModelSource({ kind: 'hf', repoUrl: repo.trim(), revision: rev.trim() || 'main' });
        }}
      >
        <input
          type="url"
          placeholder="https://huggingface.co/org/repo (files at …/resolve/main/…)"
          value={repo}
          onChange={(e) => setRepo(e.target.value)}
          style={{ flex: 1, minWidth: '16rem' }}
          aria-label="Hugging Face-style repository URL"
        />
        <input value={rev} onChange={(e) => setRev(e.target.value)} style={{ width: '6rem' }} aria-label="Revision" />
        <button type="submit">Use repository</button>
      </form>
    </section>
  );
}

/** Which variant runs: 'auto' (the plan: int8 on WASM when its card matches fp32, fp16 with shader-f16) or one forced. */
function DtypeChoice({ entry }: { entry: ModelEntry }) {
  const choice = useAppStore((s) => s.settings.dtypes[entry.id] ?? 'auto');
  const setModelDtype = useAppStore((s) => s.setModelDtype);
  const running = useAppStore((s) => s.models[entry.id]?.report?.dtype);
  const dtypes = Object.keys(entry.variants) as Dtype[];
  if (dtypes.length < 2) return null;
  const v8 = entry.variants.int8 ? quantizedVerdict(entry, 'int8') : undefined;
  return (
    <div className="small" style={{ marginTop: '0.3rem' }}>
      <label>
        Run{' '}
        <select value={choice} onChange={(e) => void setModelDtype(entry.id, e.target.value as Dtype | 'auto')} data-testid={`dtype-select-${entry.id}`}>
          <option value="auto">auto</option>
          {dtypes.map((d) => (
            <option key={d} value={d}>
              {d}
              {d === 'fp16' ? ' (WebGPU with shader-f16)' : ''}
            </option>
          ))}
        </select>
      </label>
      {running && <span className="muted"> · running {running}</span>}
      {v8 && (
        <div className={v8.matches ? 'muted' : 'muted'} data-testid={`int8-verdict-${entry.id}`}>
          {v8.matches ? `auto runs int8 on WASM: ${v8.reason}` : `auto keeps fp32: ${v8.reason}`}
        </div>
      )}
      {Object.entries(entry.variants).map(([d, v]) =>
        v?.parity ? (
          <div key={d} className="muted" title={v.parity.reference}>
            {d} parity: max |Δ| {v.parity.max_abs_diff.toExponential(1)}
          </div>
        ) : null,
      )}
    </div>
  );
}

function ModelRow({ entry }: { entry: ModelEntry }) {
  const source = useAppStore((s) => s.source);
  const stored = useAppStore((s) => s.stored);
  const download = useAppStore((s) => s.download);
  const downloadModel = useAppStore((s) => s.downloadModel);
  const verifyModel = useAppStore((s) => s.verifyModel);
  const deleteModel = useAppStore((s) => s.deleteModel);
  const have = downloadedVariants(entry, entrySource(entry, source), stored);
  const busy = download?.modelId === entry.id && !download.done && !download.error;
  const metrics = entry.card.metrics ?? {};
  return (
    <tr data-testid={`model-row-${entry.id}`}>
      <td>
        <strong>{entry.name}</strong>
        <div className="muted small">{entry.card.summary}</div>
        {entry.weights === 'trained' && Object.keys(metrics).length > 0 && (
          <div className="small card-metrics" data-testid={`card-metrics-${entry.id}`}>
            {metrics.dataset != null && <div className="muted">measured on {String(metrics.dataset)}</div>}
            {headlineMetrics(entry).map((k) => (
              <span key={k} className="metric">
                {k} <strong>{(metrics[k] as number).toFixed(3)}</strong>
              </span>
            ))}
            <details>
              <summary>all card metrics</summary>
              <dl className="facts">
                {Object.entries(metrics).map(([k, v]) => (
                  <div key={k} className="fact">
                    <dt>{k}</dt>
                    <dd>{typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(4) : String(v)}</dd>
                  </div>
                ))}
              </dl>
            </details>
          </div>
        )}
      </td>
      <td>{entry.family}</td>
      <td>
        <WeightsBadge weights={entry.weights} />
      </td>
      <td className="num">
        {Object.entries(entry.variants).map(([d, v]) => (
          <div key={d}>
            {d}: {formatBytes(totalBytes(v!))}
          </div>
        ))}
        <DtypeChoice entry={entry} />
      </td>
      <td data-testid={`model-state-${entry.id}`}>{have.length ? `downloaded (${have.join(', ')})` : 'not downloaded'}</td>
      <td>
        <div className="row">
          <button
            type="button"
            onClick={() => void (have.length ? verifyModel(entry.id) : downloadModel(entry.id))}
            disabled={busy || !!(download && !download.done && !download.error)}
            data-testid={`download-${entry.id}`}
            title={have.length ? 're-hash the cached files (SHA-256) against the manifest; damaged ones are downloaded again' : undefined}
          >
            {have.length ? 'Verify' : 'Download'}
          </button>
          <button type="button" onClick={() => void deleteModel(entry.id)} disabled={!have.length || busy} data-testid={`delete-${entry.id}`}>
            Delete
          </button>
        </div>
      </td>
    </tr>
  );
}

/** The download in progress; `transient` (the Viewer's copy): gone once the download has finished well. */
export function DownloadProgressBar({ transient = false }: { transient?: boolean }) {
  const download = useAppStore((s) => s.download);
  const manifest = useAppStore((s) => s.manifest);
  const cancel = useAppStore((s) => s.cancelDownload);
  // The reason is shown once: in the alert region while that alert is up, here after it was dismissed.
  const alerted = useAppStore((s) => !!download?.error && s.alerts.some((a) => a.message === download.error));
  if (!download || (transient && download.done && !download.error)) return null;
  const p = download.progress;
  const name = manifest?.models.find((m) => m.id === download.modelId)?.name ?? download.modelId;
  const pct = p?.percent ?? 0;
  return (
    <div className="download" data-testid="download-progress">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <span>
          {download.error ? 'Failed: ' : download.done ? 'Ready: ' : 'Downloading '}
          {name}
        </span>
        <span className="num small" data-testid="download-text">
          {p ? `${formatBytes(p.loadedBytes)} / ${formatBytes(p.totalBytes)} · ${pct.toFixed(0)}%` : '…'}
          {p && !download.done && !download.error ? ` · ${eta(p.etaSeconds)}` : ''}
          {p && p.cachedBytes > 0 ? ` · ${formatBytes(p.cachedBytes)} from cache` : ''}
        </span>
      </div>
      <div className="progress" role="progressbar" aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(pct)} aria-label="Model download">
        <div style={{ width: `${pct}%` }} />
      </div>
      {download.error && !alerted && (
        <p className="error-text small" data-testid="download-error">
          {download.error}
        </p>
      )}
      {!download.done && !download.error && (
        <button type="button" onClick={cancel}>
          Cancel
        </button>
      )}
    </div>
  );
}

/** What the start-up or Verify sweep removed from the model cache (half-written entries), when it removed anything. */
function CacheRepairNote() {
  const r = useAppStore((s) => s.cacheRepair);
  if (!r) return null;
  const parts: string[] = [];
  if (r.files) parts.push(`${r.files} incomplete file${r.files === 1 ? '' : 's'} (${formatBytes(r.bytes)}) with no record, left by a download interrupted mid-write`);
  if (r.listings) parts.push(`${r.listings} record${r.listings === 1 ? '' : 's'} whose file was gone`);
  return (
    <p className="small" data-testid="cache-repair">
      {r.when === 'start-up' ? 'At start-up' : 'On Verify'} the model cache removed {parts.join(' and ')}.
    </p>
  );
}

/** The SAM embedding cache: count, bytes, cap, and Clear. */
function EmbeddingCachePanel() {
  const stats = useAppStore((s) => s.embeddingCache);
  const refresh = useAppStore((s) => s.refreshEmbeddingCache);
  const clear = useAppStore((s) => s.clearEmbeddingCache);
  useEffect(() => {
    void refresh(); // the segment worker adds embeddings: read the count whenever the view opens
  }, [refresh]);
  return (
    <p className="small" data-testid="embedding-cache">
      Segmentation embeddings:{' '}
      {stats ? (
        <>
          <span data-testid="embedding-cache-stats">
            {stats.count} image{stats.count === 1 ? '' : 's'}, {formatBytes(stats.bytes)}
          </span>{' '}
          of a {formatBytes(stats.maxBytes)} cap (least recently used evicted first){' '}
        </>
      ) : (
        'not available here '
      )}
      <button type="button" onClick={() => void clear()} disabled={!stats?.count} data-testid="embedding-cache-clear">
        Clear
      </button>
    </p>
  );
}

export function ModelManager() {
  const manifest = useAppStore((s) => s.manifest);
  const manifestError = useAppStore((s) => s.manifestError);
  const stored = useAppStore((s) => s.stored);
  const quota = useAppStore((s) => s.quota);
  const refresh = useAppStore((s) => s.refreshStored);
  const used = stored.reduce((a, f) => a + f.bytes, 0);
  return (
    <div className="models-layout">
      <SourcePicker />
      <HubModelPicker />
      <section className="panel" aria-labelledby="mm-h">
        <h2 id="mm-h">Models</h2>
        {manifestError && <p className="error-text">{manifestError}</p>}
        <DownloadProgressBar />
        {manifest && (
          <table className="data-table">
            <thead>
              <tr>
                <th>Model</th>
                <th>Family</th>
                <th>Weights</th>
                <th>Size</th>
                <th>State</th>
                <th />
              </tr>
            </thead>
            <tbody>
              {manifest.models.map((m) => (
                <ModelRow key={m.id} entry={m} />
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section className="panel" aria-labelledby="cache-h">
        <h2 id="cache-h">Model cache</h2>
        <p className="small" data-testid="quota">
          {formatBytes(used)} in {stored.length} file{stored.length === 1 ? '' : 's'}
          {quota ? ` · browser storage used ${formatBytes(quota.usage)} of ${formatBytes(quota.quota)} quota` : ' · storage quota unknown'}{' '}
          <button type="button" onClick={() => void refresh()}>
            Refresh
          </button>
        </p>
        <CacheRepairNote />
        <EmbeddingCachePanel />
        {stored.length > 0 && (
          <table className="data-table" data-testid="cached-files">
            <thead>
              <tr>
                <th>File</th>
                <th>Model</th>
                <th>dtype</th>
                <th className="num">Size</th>
                <th>sha256</th>
              </tr>
            </thead>
            <tbody>
              {stored.map((f) => (
                <tr key={f.url}>
                  <td title={f.url}>{f.path}</td>
                  <td>{f.modelId}</td>
                  <td>{f.dtype}</td>
                  <td className="num">{formatBytes(f.bytes)}</td>
                  <td className="muted">{f.sha256.slice(0, 12)}…</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}
