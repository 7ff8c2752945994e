/**
 * The alert region's messages, and `guarded`, which every async action is wrapped in: a failure becomes an alert
 * naming its cause, never an unhandled promise rejection, and the rest of the state (earlier results) is kept.
 */
import { errorMessage } from '../lib/runtime/outcome';
import type { AppState, SliceCreator } from './state';

export interface AlertMessage {
  id: number;
  kind: 'error' | 'info';
  message: string;
}

export interface AlertsSlice {
  alerts: AlertMessage[];
  /** Last alert id handed out (ids are unique per store). */
  alertSeq: number;
  alert(message: string, kind?: AlertMessage['kind']): void;
  dismissAlert(id: number): void;
}

export const createAlertsSlice: SliceCreator<AlertsSlice> = (set) => ({
  alerts: [],
  alertSeq: 0,

  alert(message, kind = 'error') {
    set((s) => {
      const a = { id: s.alertSeq + 1, kind, message };
      // The same message again moves to the top instead of stacking; only the last few are kept.
      return { alertSeq: a.id, alerts: [...s.alerts.filter((x) => x.message !== message), a].slice(-5) };
    });
  },

  dismissAlert(id) {
    set((s) => ({ alerts: s.alerts.filter((a) => a.id !== id) }));
  },
});

/**
 * `fn` with its failure caught: a thrown error (or rejected promise) becomes the alert "<label>: <cause>" (just
 * "<cause>" when it already starts with the label) and the call resolves `undefined`. Labels say what failed:
 * 'Classification failed', 'scan.dcm'.
 */
export function guarded<A extends unknown[], R>(get: () => AppState, label: string, fn: (...a: A) => Promise<R>): (...a: A) => Promise<R | undefined> {
  return async (...a: A) => {
    try {
      return await fn(...a);
    } catch (e) {
      const msg = errorMessage(e);
      get().alert(msg.startsWith(label) ? msg : `${label}: ${msg}`);
      return undefined;
    }
  };
}
