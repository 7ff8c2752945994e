/**
 * CRC-32 (ISO 3309 / ITU-T V.42, polynomial 0xEDB88320 reflected), as used by zip (APPNOTE 4.4.7) and PNG chunks
 * (PNG spec §5.5). Table-driven; `crc32(b)` of a whole buffer or `crc32Update(c, part)` for streamed parts.
 */
let table: Uint32Array | null = null;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** Running CRC: start from 0, feed parts in order; returns the CRC of everything fed so far (unsigned 32-bit). */
export function crc32Update(crc: number, bytes: Uint8Array): number {
  const t = crcTable();
  let c = (crc ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-32 of `bytes` (unsigned 32-bit). */
export function crc32(bytes: Uint8Array): number {
  return crc32Update(0, bytes);
}
