/** SHA-256 via WebCrypto (browsers, workers, and Node ≥ 20 as globalThis.crypto.subtle). */

export function toHex(buf: ArrayBuffer | Uint8Array): string {
  const b = buf instanceof Uint8Array ? buf : new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i].toString(16).padStart(2, '0');
  return s;
}

/** Lowercase hex sha256 of the bytes. */
export async function sha256Hex(data: ArrayBuffer | Uint8Array): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) throw new Error('crypto.subtle is not available (needs a secure context: https or localhost)');
  const view = data instanceof Uint8Array ? data : new Uint8Array(data);
  const digest = await subtle.digest('SHA-256', view as Uint8Array<ArrayBuffer>);
  return toHex(digest);
}
