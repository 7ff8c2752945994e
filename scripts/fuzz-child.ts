/**
 * The child process of `npm run fuzz`: receives one input at a time over IPC and runs it through the decode path
 * the app and the CLIs share (decodeImageFileNode: sniff, size limits, DICOM with codecs, PNG/JPEG; zips through
 * listZip/readZipEntry then each entry decoded), then answers decoded / refused (a typed error: ImageDecodeError,
 * ZipReadError) / error (anything else: a crash of the decode path), with its message and the process's RSS.
 */
import { isImageDecodeError } from '../app/lib/imaging/errors';
import { bytesSource, listZip, readZipEntry } from '../app/lib/batch/zip';
import { decodeImageFileNode } from '../app/platform/node/decode';

type Outcome = 'decoded' | 'refused' | 'error';

function classify(e: unknown): { outcome: Outcome; message: string } {
  const err = e as Error;
  if (isImageDecodeError(e) || err?.name === 'ZipReadError') return { outcome: 'refused', message: `${err.name}: ${err.message}` };
  return { outcome: 'error', message: `${err?.name ?? typeof e}: ${err?.message ?? String(e)}\n${err?.stack?.split('\n').slice(1, 6).join('\n') ?? ''}` };
}

async function decodeOne(bytes: Uint8Array): Promise<void> {
  const img = await decodeImageFileNode(bytes);
  // a multi-frame DICOM: its last frame too (--all-frames plans every frame from this count)
  if (img.dicom && img.dicom.frames > 1) await decodeImageFileNode(bytes, { frame: img.dicom.frames - 1 });
}

async function run(kind: string, bytes: Uint8Array): Promise<{ outcome: Outcome; message: string }> {
  try {
    if (kind !== 'zip') {
      await decodeOne(bytes);
      return { outcome: 'decoded', message: '' };
    }
    const src = bytesSource(bytes);
    const listing = await listZip(src);
    const worst: { outcome: Outcome; message: string } = { outcome: 'decoded', message: '' };
    for (const e of listing.entries.slice(0, 16)) {
      try {
        await decodeOne(await readZipEntry(src, e));
      } catch (err) {
        const c = classify(err);
        if (c.outcome === 'error') return c;
        Object.assign(worst, c); // a refused entry fails its row only
      }
    }
    return worst;
  } catch (e) {
    return classify(e);
  }
}

process.on('message', async (m: { id: number; kind: string; bytes: Uint8Array }) => {
  const r = await run(m.kind, new Uint8Array(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
  // maxRSS is this process's high-water mark; collecting after a large input keeps its garbage from being counted
  // against the next (the child runs with --expose-gc)
  const peak = process.resourceUsage().maxRSS * 1024;
  if (process.memoryUsage().rss > 256 * 2 ** 20) (globalThis as { gc?: () => void }).gc?.();
  process.send!({ id: m.id, ...r, rss: peak });
});
process.send!({ ready: true });
