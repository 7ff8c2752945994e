/**
 * No work lost in `npm run label`: every finished chunk is appended to labeled_dataset.csv (its finished rows) and
 * to `<out>.progress.jsonl` (every row of the chunk, embeddings included, and the files that failed), so a run
 * stopped by a crash, a kill or a full disk keeps what it had done, and `--resume` continues it from the first file
 * not yet recorded. The progress file's first line records what the run was made with; a resume with other models,
 * threshold or prompt labels is refused (its rows would not belong in one CSV). Removed when the run completes.
 */
import fs from 'node:fs';
import type { BatchRow } from '../lib/batch/rows';
import { labeledDatasetHeaderLine, labeledDatasetLine } from '../lib/batch/csv';
import { batchLabeledRows, type BatchLabels } from '../lib/batch/rows';

/** What a run's rows depend on: a resume must match it. */
export interface RunIdentity {
  model: string;
  dtype: string;
  clip: string | null;
  zero_shot_labels: string[];
  threshold: number;
  dir: string;
}

const FLOAT_KEYS = ['classifierEmbedding', 'clipEmbedding'] as const;

/** A row as one JSON line (embeddings as plain arrays, the thumbnail left out). */
function rowJson(r: BatchRow): string {
  const o: Record<string, unknown> = { ...r, thumbnail: undefined };
  for (const k of FLOAT_KEYS) if (r[k]) o[k] = Array.from(r[k]!);
  return JSON.stringify(o);
}

function rowFromJson(o: Record<string, unknown>): BatchRow {
  const r = o as unknown as BatchRow;
  for (const k of FLOAT_KEYS) if (Array.isArray(o[k])) r[k] = Float32Array.from(o[k] as number[]);
  return r;
}

export const progressFileName = (out: string) => `${out}.progress.jsonl`;

/**
 * The rows recorded by a stopped run with identity `id`. Throws when the progress file belongs to another run (other
 * model, threshold, prompt labels or folder). A last line cut short by the crash is ignored (that chunk runs again).
 */
export function readProgress(out: string, id: RunIdentity): BatchRow[] | null {
  const file = progressFileName(out);
  if (!fs.existsSync(file)) return null;
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  if (!lines.length) return null;
  const head = JSON.parse(lines[0]) as { identity: RunIdentity };
  for (const k of Object.keys(id) as (keyof RunIdentity)[]) {
    if (JSON.stringify(head.identity[k]) !== JSON.stringify(id[k])) {
      throw new Error(`--resume: ${file} was written by a run with ${k} ${JSON.stringify(head.identity[k])}, this one has ${JSON.stringify(id[k])}; start over without --resume or use the same options`);
    }
  }
  const rows: BatchRow[] = [];
  for (const line of lines.slice(1)) {
    try {
      rows.push(rowFromJson(JSON.parse(line)));
    } catch {
      break; // a line cut short by the crash: that chunk runs again
    }
  }
  return rows;
}

/** Appends each finished chunk to the CSV and the progress file (flushed to disk before the next chunk starts). */
export class ProgressWriter {
  private readonly csv: number;
  private readonly progress: number;

  /** Starts both files (from `done`, the rows of a resumed run, when given). */
  constructor(
    private readonly out: string,
    id: RunIdentity,
    private readonly threshold: number,
    private readonly labels: BatchLabels,
    private readonly zsLabels: string[],
    done: BatchRow[] = [],
  ) {
    this.csv = fs.openSync(out, 'w');
    this.progress = fs.openSync(progressFileName(out), 'w');
    fs.writeSync(this.progress, JSON.stringify({ identity: id }) + '\n');
    fs.writeSync(this.csv, labeledDatasetHeaderLine(zsLabels) + '\r\n');
    this.append(done);
  }

  /** One chunk's rows (done and failed), in file order. */
  append(rows: BatchRow[]): void {
    if (!rows.length) return;
    const lines = batchLabeledRows(rows, this.threshold, this.labels).map((r) => labeledDatasetLine(r, this.zsLabels) + '\r\n');
    if (lines.length) fs.writeSync(this.csv, lines.join(''));
    fs.writeSync(this.progress, rows.map((r) => rowJson(r) + '\n').join(''));
    fs.fsyncSync(this.csv);
    fs.fsyncSync(this.progress);
  }

  /** The run completed: the CSV is whole, the progress file is no longer needed. */
  finish(): void {
    fs.closeSync(this.csv);
    fs.closeSync(this.progress);
    fs.rmSync(progressFileName(this.out), { force: true });
  }
}
