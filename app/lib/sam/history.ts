/** Undo/redo over immutable snapshots (one per interaction). */
export interface History<T> {
  past: T[];
  present: T;
  future: T[];
}

export function historyInit<T>(present: T): History<T> {
  return { past: [], present, future: [] };
}
export function historyPush<T>(h: History<T>, next: T, limit = 100): History<T> {
  return { past: [...h.past, h.present].slice(-limit), present: next, future: [] };
}
export function historyUndo<T>(h: History<T>): History<T> {
  if (!h.past.length) return h;
  return { past: h.past.slice(0, -1), present: h.past[h.past.length - 1], future: [h.present, ...h.future] };
}
export function historyRedo<T>(h: History<T>): History<T> {
  if (!h.future.length) return h;
  return { past: [...h.past, h.present], present: h.future[0], future: h.future.slice(1) };
}
