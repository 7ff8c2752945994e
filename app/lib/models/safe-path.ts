/**
 * Model file paths and cache keys that cannot escape their model.
 *
 * A manifest's file paths become URLs (resolveFileUrl) and those URLs are the model cache's keys. The WHATWG URL
 * parser, which Cache Storage and fetch apply to every key, removes `.` and `..` segments, treats `%2e`/`%2E` (any
 * case, mixed with plain dots) as a dot, and turns `\` into `/` for http(s) URLs. A hostile local model pack with a
 * file at `a/%2e%2E/../other-model/model.onnx` would otherwise write its bytes under another model's key, and that
 * model would then run them. So a path is refused unless it is plainly relative and every segment is a real name,
 * and a key is refused when URL parsing would change its segments. (URL Standard, "path state": single-dot and
 * double-dot path segments; https://url.spec.whatwg.org/#single-dot-path-segment)
 */

export class UnsafeModelPathError extends Error {
  /** The path or key as given. */
  readonly path: string;
  constructor(path: string, why: string) {
    super(`Unsafe model file path '${path}': ${why}`);
    this.name = 'UnsafeModelPathError';
    this.path = path;
  }
}

/**
 * Percent-decode until stable (double encoding such as `%252e` hides a dot from a single decode). A `%` that starts
 * no valid escape stays literal, as the URL parser leaves it.
 */
function fullyDecoded(s: string): string {
  let cur = s;
  for (let i = 0; i < 4; i++) {
    let next: string;
    try {
      next = decodeURIComponent(cur);
    } catch {
      return cur;
    }
    if (next === cur) return cur;
    cur = next;
  }
  return cur;
}

/**
 * Why `path` is not a safe relative model file path, or null when it is. Safe: non-empty, no leading `/`, no scheme
 * or drive (`https:`, `C:`), no backslash, no control character, `?` or `#`, and every `/`-separated segment is a
 * non-empty name that is not `.` or `..` even after percent-decoding (which must also not produce `/` or `\`).
 */
export function unsafePathReason(path: string): string | null {
  if (path.length === 0) return 'it is empty';
  if (path.startsWith('/')) return 'it is absolute (starts with /)';
  if (/^[a-z][a-z0-9+.-]*:/i.test(path)) return 'it names a scheme or drive';
  if (path.includes('\\')) return 'it contains a backslash';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(path)) return 'it contains a control character';
  if (/[?#]/.test(path)) return 'it contains ? or #';
  for (const seg of path.split('/')) {
    if (seg === '') return 'it has an empty segment (//) or a trailing /';
    const d = fullyDecoded(seg);
    if (d === '.' || d === '..') return `segment '${seg}' is a dot segment${d !== seg ? ` ('${d}' once percent-decoded)` : ''}`;
    if (/[/\\]/.test(d)) return `segment '${seg}' hides a path separator in percent-encoding`;
  }
  return null;
}

/** `path` itself when safe (see unsafePathReason); else UnsafeModelPathError naming the path and the reason. */
export function checkModelFilePath(path: string): string {
  const why = unsafePathReason(path);
  if (why) throw new UnsafeModelPathError(path, why);
  return path;
}

/**
 * `key` itself when URL parsing keeps its path segments as written (no dot segment removed, no backslash split);
 * else UnsafeModelPathError. Applied to every model cache key before it touches Cache Storage or IndexedDB, so the
 * key the metadata is stored under is the key the bytes are stored under.
 */
export function checkStableKey(key: string): string {
  // Keys of the app's own models are origin-relative ('/models/...'): resolved against a fixed base here.
  let parsed: URL;
  try {
    parsed = new URL(key, 'http://localhost/');
  } catch {
    throw new UnsafeModelPathError(key, 'it is not a URL');
  }
  const m = /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*([^?#]*)/i.exec(key);
  const rawPath = m ? m[1] : `${key.startsWith('/') ? '' : '/'}${/^[^?#]*/.exec(key)![0]}`;
  const rawSegs = rawPath.split('/');
  const parsedSegs = parsed.pathname.split('/');
  if (rawSegs.length !== parsedSegs.length || rawSegs.some((s) => s === '.' || s === '..' || /^(%2e|\.){1,2}$/i.test(s)) || rawPath.includes('\\')) {
    throw new UnsafeModelPathError(key, `URL parsing turns its path into '${parsed.pathname}'`);
  }
  return key;
}
