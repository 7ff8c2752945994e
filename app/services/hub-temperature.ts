/**
 * The learned zero-shot temperature of a Hub CLIP-family repo, read from its model.safetensors by byte ranges: the
 * 8-byte header length, the JSON header, then only the bytes of `logit_scale` (and `logit_bias` for SigLIP): a few
 * kilobytes at most, whatever the size of the weights (app/lib/hub/safetensors.ts, app/lib/hub/temperature.ts).
 * Any failure (no Range support, a header without the tensor, an odd dtype) is not an error for adding the model:
 * it becomes the reason in the fallback note (scores then use config.json's value: ranking exact, probabilities
 * approximate). These bytes are not checked against the file's sha256 (that needs the whole file); they are read at
 * the pinned commit.
 */
import type { FetchLike } from '../lib/models/sources';
import { decodeScalar, findTensor, parseSafetensorsHeader, safetensorsHeaderLength, scalarByteRange } from '../lib/hub/safetensors';
import { zeroShotScoring, type TemperatureLookup } from '../lib/hub/temperature';

/** Bytes [start, endInclusive] of the file; throws an Error naming the cause. */
export type RangeReader = (start: number, endInclusive: number) => Promise<Uint8Array>;

/** The name of the weights file whose header is read (safetensors only: a pickle cannot be read by ranges safely). */
export const WEIGHTS_FILE = 'model.safetensors';

/** A RangeReader over HTTP (Range: bytes=a-b). A server that ignores Range (200) is refused before its body is read. */
export function httpRangeReader(fetchImpl: FetchLike, url: string): RangeReader {
  return async (start, end) => {
    const res = await fetchImpl(url, { headers: { Range: `bytes=${start}-${end}` }, cache: 'no-store' });
    if (res.status !== 206) {
      await res.body?.cancel().catch(() => undefined);
      throw new Error(res.ok ? `${WEIGHTS_FILE}: the server ignores Range requests (HTTP ${res.status}); the whole file is not downloaded for two numbers` : `${WEIGHTS_FILE}: HTTP ${res.status}`);
    }
    const bytes = new Uint8Array(await res.arrayBuffer());
    if (bytes.byteLength !== end - start + 1) throw new Error(`${WEIGHTS_FILE}: asked for ${end - start + 1} bytes, got ${bytes.byteLength}`);
    return bytes;
  };
}

/** A RangeReader over a local file (a folder in the Hub layout). */
export function blobRangeReader(blob: Blob): RangeReader {
  return async (start, end) => {
    if (end >= blob.size) throw new Error(`${WEIGHTS_FILE}: bytes ${start}-${end} are past its end (${blob.size} bytes)`);
    return new Uint8Array(await blob.slice(start, end + 1).arrayBuffer());
  };
}

/**
 * exp(logit_scale) (and logit_bias for SigLIP) from model.safetensors, or the reason they are not available.
 * Tensors are found by name (`logit_scale`, or a name ending in `.logit_scale`), one F32/F16/BF16/F64 value each.
 */
export async function readLearnedTemperature(read: RangeReader | undefined, architecture: string): Promise<TemperatureLookup> {
  if (!read) return { unavailable: `no ${WEIGHTS_FILE} in this repo` };
  try {
    const n = safetensorsHeaderLength(await read(0, 7), WEIGHTS_FILE);
    const header = parseSafetensorsHeader(await read(8, 8 + n - 1), WEIGHTS_FILE);
    const scalar = async (name: string): Promise<number> => {
      const t = findTensor(header, name);
      if (!t) throw new Error(`${WEIGHTS_FILE} has no ${name} tensor`);
      const [a, b] = scalarByteRange(n, t, WEIGHTS_FILE);
      const v = decodeScalar(t.info.dtype, await read(a, b));
      if (!Number.isFinite(v)) throw new Error(`${WEIGHTS_FILE}: ${name} is ${v}`);
      return v;
    };
    const logitScale = Math.exp(await scalar('logit_scale'));
    if (!Number.isFinite(logitScale) || logitScale <= 0) throw new Error(`${WEIGHTS_FILE}: exp(logit_scale) = ${logitScale}`);
    const logitBias = zeroShotScoring(architecture) === 'sigmoid' ? await scalar('logit_bias') : undefined;
    return { learned: { logitScale, ...(logitBias !== undefined ? { logitBias } : {}) }, from: WEIGHTS_FILE };
  } catch (e) {
    return { unavailable: (e as Error)?.message ?? String(e) };
  }
}
