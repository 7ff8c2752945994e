/** The batch's inputs (folder, files, .zip) and its progress line with cancel, resume, export and clear. */
import { chosenModel, useAppStore } from '../store';
import { metadataFileName } from '../lib/batch/csv';
import { filesFromDataTransfer } from './dropped-files';

export function BatchIngest() {
  const batchAdd = useAppStore((s) => s.batchAdd);
  const labels = useAppStore((s) => chosenModel(s, 'classifier')?.labels);
  const add = async (files: File[]) => {
    const picked = files.map((f) => ({ name: f.name, path: f.webkitRelativePath || f.name, blob: f as Blob }));
    await batchAdd(picked);
  };
  return (
    <div
      className="dropzone"
      data-testid="batch-dropzone"
      onDragOver={(e) => e.preventDefault()}
      onDrop={async (e) => {
        e.preventDefault();
        // Folders are walked; files stay File references (read one chunk at a time by the batch run).
        const files = await filesFromDataTransfer(e.dataTransfer);
        await batchAdd(files.map((f) => ({ name: f.file.name, path: f.path, blob: f.file })));
      }}
    >
      <p>
        <strong>Batch:</strong> a folder (subfolders named {labels?.length ? labels.map((l) => `${l}/`).join(', ') : 'after the labels'} give the ground truth), many files, or a .zip
      </p>
      <div className="row">
        <label className="button">
          Choose folder
          <input
            type="file"
            multiple
            data-testid="batch-folder-input"
            ref={(el) => el?.setAttribute('webkitdirectory', '')}
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              await add(files);
            }}
          />
        </label>
        <label className="button">
          Choose files or .zip
          <input
            type="file"
            multiple
            accept=".png,.jpg,.jpeg,.dcm,.zip"
            data-testid="batch-file-input"
            onChange={async (e) => {
              const files = [...(e.target.files ?? [])];
              e.target.value = '';
              await add(files);
            }}
          />
        </label>
      </div>
    </div>
  );
}

export function BatchProgress() {
  const b = useAppStore((s) => s.batch);
  const run = useAppStore((s) => s.batchRun);
  const cancel = useAppStore((s) => s.batchCancel);
  const clear = useAppStore((s) => s.batchClear);
  const csv = useAppStore((s) => s.batchCsv);
  const csvMetadata = useAppStore((s) => s.batchCsvMetadata);
  const metricsReport = useAppStore((s) => s.batchMetricsReport);
  const total = b.rows.length;
  const { processed: done, failed: errors } = b.derived.counts;
  if (!total) return null;
  // Running time only: a paused batch's clock stands still.
  const elapsed = (b.activeMs + (b.runStartedAt != null ? Date.now() - b.runStartedAt : 0)) / 1000;
  const pct = (100 * done) / total;
  const save = (text: string, type: string, name: string) => {
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([text], { type }));
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  };
  // The CSV and its sidecar: the one threshold all its classifier columns use, and where it came from.
  const download = () => {
    save(csv(), 'text/csv', 'labeled_dataset.csv');
    save(JSON.stringify(csvMetadata(), null, 2), 'application/json', metadataFileName('labeled_dataset.csv'));
    // The metrics report `npm run label` prints for the same rows (app/services/batch.ts batchMetricsReport).
    save(JSON.stringify(metricsReport(), null, 2), 'application/json', 'labeled_dataset.metrics.json');
  };
  return (
    <div className="panel">
      <div className="row" style={{ justifyContent: 'space-between' }}>
        <span data-testid="batch-progress-text">
          {done} / {total} processed{errors ? ` · ${errors} failed` : ''} · {elapsed.toFixed(0)} s{b.running ? '' : done < total ? ' · paused' : ' · finished'}
        </span>
        {!b.running && b.imagesPerSecond != null && (
          <span className="muted" data-testid="batch-throughput" title="images processed per second of running time (model loading included, paused time excluded)">
            {b.imagesPerSecond.toFixed(2)} images/s
          </span>
        )}
        <div className="row">
          {b.running ? (
            <button type="button" onClick={cancel} data-testid="batch-cancel">
              Cancel
            </button>
          ) : (
            done < total && (
              <button type="button" onClick={() => void run()} data-testid="batch-resume">
                Resume
              </button>
            )
          )}
          <button type="button" onClick={download} disabled={!done} data-testid="batch-export">
            Export labeled_dataset.csv
          </button>
          <span className="muted small" data-testid="batch-export-threshold">
            {b.labels.positive != null ? `at threshold ${b.threshold.toFixed(2)} (${b.thresholdSource})` : 'argmax (multi-class)'}
          </span>
          <button type="button" onClick={clear} disabled={b.running}>
            Clear
          </button>
        </div>
      </div>
      <div className="progress" role="progressbar" aria-label="Batch progress" aria-valuenow={Math.round(pct)} aria-valuemin={0} aria-valuemax={100}>
        <div style={{ width: `${pct}%` }} />
      </div>
    </div>
  );
}
