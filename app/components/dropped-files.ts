/**
 * Files and folders dropped on a drop zone, folders walked recursively.
 *
 * A drop's DataTransfer is only readable during the drop event itself: the items are captured synchronously (before
 * the first await), then walked. Chromium gives File System Access handles (DataTransferItem.getAsFileSystemHandle,
 * WICG File System Access §"drag and drop"); every browser gives the older entries API (webkitGetAsEntry,
 * FileSystemDirectoryReader.readEntries, which returns at most 100 entries per call and must be called until it
 * returns none). Files are returned as File references, not read: 3,000 dropped files cost no memory until each is
 * decoded.
 */
import { isJunkEntry } from '../lib/batch/zip';

export interface DroppedFile {
  file: File;
  /** Path relative to the drop: "folder/NORMAL/a.png" (folder names carry the ground truth). */
  path: string;
}

/** Minimal shapes of the two directory APIs (structural, so tests can hand in their own trees). */
interface HandleLike {
  kind: 'file' | 'directory';
  name: string;
  getFile?(): Promise<File>;
  values?(): AsyncIterable<HandleLike>;
}

interface EntryLike {
  isFile: boolean;
  isDirectory: boolean;
  name: string;
  file?(ok: (f: File) => void, fail: (e: unknown) => void): void;
  createReader?(): { readEntries(ok: (e: EntryLike[]) => void, fail: (e: unknown) => void): void };
}

interface ItemLike {
  kind: string;
  getAsFile(): File | null;
  webkitGetAsEntry?(): EntryLike | null;
  getAsFileSystemHandle?(): Promise<HandleLike | null>;
}

export interface DataTransferLike {
  items?: ArrayLike<ItemLike> | null;
  files?: ArrayLike<File> | null;
}

async function walkHandle(h: HandleLike, prefix: string, out: DroppedFile[]): Promise<void> {
  const path = `${prefix}${h.name}`;
  if (h.kind === 'file' && h.getFile) {
    out.push({ file: await h.getFile(), path });
  } else if (h.kind === 'directory' && h.values) {
    for await (const child of h.values()) await walkHandle(child, `${path}/`, out);
  }
}

async function walkEntry(e: EntryLike, prefix: string, out: DroppedFile[]): Promise<void> {
  const path = `${prefix}${e.name}`;
  if (e.isFile && e.file) {
    out.push({ file: await new Promise<File>((ok, fail) => e.file!(ok, fail)), path });
  } else if (e.isDirectory && e.createReader) {
    const reader = e.createReader();
    for (;;) {
      const batch = await new Promise<EntryLike[]>((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) break;
      for (const c of batch) await walkEntry(c, `${path}/`, out);
    }
  }
}

/**
 * Every file of a drop, folders walked, hidden files and __MACOSX skipped, sorted by path. Call it synchronously
 * from the drop handler (it captures the items before its first await).
 */
export function filesFromDataTransfer(dt: DataTransferLike): Promise<DroppedFile[]> {
  const items = Array.from(dt.items ?? []).filter((it) => it.kind === 'file');
  // Captured now: after the handler's first await the DataTransfer is empty.
  const captured = items.map((it) => ({
    handle: typeof it.getAsFileSystemHandle === 'function' ? it.getAsFileSystemHandle().catch(() => null) : null,
    entry: typeof it.webkitGetAsEntry === 'function' ? it.webkitGetAsEntry() : null,
    file: it.getAsFile(),
  }));
  const loose = items.length ? [] : Array.from(dt.files ?? []);
  return (async () => {
    const out: DroppedFile[] = [];
    for (const c of captured) {
      const handle = c.handle ? await c.handle : null;
      if (handle) await walkHandle(handle, '', out);
      else if (c.entry) await walkEntry(c.entry, '', out);
      else if (c.file) out.push({ file: c.file, path: c.file.name });
    }
    for (const f of loose) out.push({ file: f, path: f.name });
    return out.filter((f) => !isJunkEntry(f.path)).sort((a, b) => a.path.localeCompare(b.path));
  })();
}
