/** Deterministic pseudo-random bytes (a 32-bit LCG, top byte), so byte-level tests name their input by (n, seed). */
export function bytesOf(n: number, seed = 1): Uint8Array {
  const b = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}
