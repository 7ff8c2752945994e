/**
 * One session run at a time, per session. ORT's WebGPU backend refuses a run while another is in flight on the same
 * session ("Session already started"), and the app starts runs from several places at once (the Viewer's
 * classification, a batch chunk, occlusion's many passes). Releasing a session while a run is in flight frees the
 * buffers under it, so `release` waits for the queued runs to end first. WASM queues runs inside ORT anyway, so the
 * queue costs nothing there. The SAM and SD engines queue whole calls (encode, decode, generate, load) with the same
 * RunQueue.
 */
import type { Session } from './sessions';

/** A serial queue: `run(fn)` starts fn when every earlier fn has settled; `idle()` resolves when all have. */
export class RunQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn, fn);
    this.tail = p.catch(() => undefined);
    return p;
  }

  /** Resolves once every run queued so far has settled (successfully or not). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined);
  }
}

/**
 * The session with its `run` calls serialised and its `release` deferred until they have ended. Everything else
 * (inputNames, outputNames, ...) is the session's own.
 */
export function serialSession(session: Session): Session {
  const q = new RunQueue();
  let released: Promise<void> | null = null;
  return new Proxy(session, {
    get(target, prop, receiver) {
      if (prop === 'run') {
        return (...args: Parameters<Session['run']>) => {
          if (released) return Promise.reject(new Error('the model session was released (the model was switched or unloaded)'));
          return q.run(() => target.run(...args));
        };
      }
      if (prop === 'release') return () => (released ??= q.idle().then(() => target.release()));
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}
