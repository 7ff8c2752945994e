/**
 * A 16×16 mid-grey baseline JPEG (333 bytes, written by PIL 11 at quality 75): decoded once by the idle prewarm
 * (app/store/models.ts) so that the imaging worker is started, its module graph evaluated and the browser's JPEG path
 * run before the user's first drop (measured: the first decode in a new worker took 140-350 ms of a 224 px drop under
 * load, README "What a user waits for").
 */
const WARM_JPEG_BASE64 =
  '/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAAQABABAREA/8QAHwAAAQUBAQEBAQEAAAAAAAAAAAECAwQFBgcICQoL/8QAtRAAAgEDAwIEAwUFBAQAAAF9AQIDAAQRBRIhMUEGE1FhByJxFDKBkaEII0KxwRVS0fAkM2JyggkKFhcYGRolJicoKSo0NTY3ODk6Q0RFRkdISUpTVFVWV1hZWmNkZWZnaGlqc3R1dnd4eXqDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT1NXW19jZ2uHi4+Tl5ufo6erx8vP09fb3+Pn6/9oACAEBAAA/ACiiiv/Z';

/** A fresh copy of the warm-up JPEG's bytes (a new buffer each call: the caller may transfer it to a worker). */
export function warmUpJpeg(): ArrayBuffer {
  const bin = atob(WARM_JPEG_BASE64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

/**
 * Resolves once the page has painted what the store holds now (the next frame, then a task), or after `maxMs` when no
 * frame comes (a hidden tab runs no animation frames). Lets the work that follows a result (the zero-shot labels after
 * the classification) start after the result is on screen instead of sharing the cores with its paint.
 */
export function afterNextPaint(maxMs = 100): Promise<void> {
  const raf = (globalThis as { requestAnimationFrame?: (cb: () => void) => number }).requestAnimationFrame;
  if (!raf) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    raf(() =>
      setTimeout(() => {
        clearTimeout(timer);
        resolve();
      }, 0),
    );
  });
}
