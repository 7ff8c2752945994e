/**
 * The batch journal: a running batch's rows written to IndexedDB as each chunk finishes, so a reload, a crash or a
 * service-worker update loses no finished row (issue 19.3). One record for the run (models, labels, threshold, the
 * inputs' paths and sizes) and one per row (thumbnail and embeddings included: they are what the similar cases and
 * the map need). File contents are not stored: after a reload the user chooses the same folder again and only the
 * rows still pending run. Where IndexedDB is missing (Node tests) every call does nothing.
 */
import { clear, createStore, entries, setMany, type UseStore } from 'idb-keyval';

/** What a stopped batch needs to be shown again and resumed. */
export interface BatchJournalRun {
  classifierId?: string;
  clipId?: string;
  classifierDtype?: string;
  labels: { labels: string[]; positive?: string; negative?: string };
  threshold: number;
  thresholdSource: 'model card' | 'user (slider)' | 'default 0.5';
  zeroShotLabels: string[];
  activeMs: number;
  startedAt?: number;
  /** Every input, by row index: its path (image_id) and size when chosen. */
  inputs: { path: string; name: string; size?: number }[];
}

export interface BatchJournal {
  /** Replace the run record (a new batch, files added, a threshold change). */
  saveRun(run: BatchJournalRun): Promise<void>;
  /** Write rows (each under its index), replacing earlier versions. */
  saveRows<R extends { index: number }>(rows: R[]): Promise<void>;
  /** The stored run and its rows (sorted by index), or null when there is none. */
  load<R extends { index: number }>(): Promise<{ run: BatchJournalRun; rows: R[] } | null>;
  clear(): Promise<void>;
}

const NONE: BatchJournal = { saveRun: async () => {}, saveRows: async () => {}, load: async () => null, clear: async () => {} };

export function browserBatchJournal(): BatchJournal {
  if (typeof indexedDB === 'undefined') return NONE;
  let store: UseStore | null = null;
  const db = () => (store ??= createStore('cxr-batch-journal', 'batch'));
  return {
    saveRun: (run) => setMany([['run', run]], db()),
    saveRows: (rows) => setMany(rows.map((r) => [`row:${String(r.index).padStart(8, '0')}`, r]), db()),
    async load<R extends { index: number }>() {
      const all = await entries<string, unknown>(db());
      const run = all.find(([k]) => k === 'run')?.[1] as BatchJournalRun | undefined;
      if (!run) return null;
      const rows = all.filter(([k]) => k.startsWith('row:')).map(([, v]) => v as R).sort((a, b) => a.index - b.index);
      return { run, rows };
    },
    clear: () => clear(db()),
  };
}
