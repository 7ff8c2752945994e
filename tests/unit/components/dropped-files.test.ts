/**
 * Folder drops are walked (issue 8 item 6). The browser test tests/e2e/inputs.spec.ts drops a real directory handle
 * (Origin Private File System) on the batch zone; here both directory APIs are given as in-memory trees shaped like
 * Chromium's (readEntries returns at most 100 entries per call).
 */
import { describe, expect, it } from 'vitest';
import { filesFromDataTransfer } from '../../../app/components/dropped-files';

type Tree = { [name: string]: Tree | string };

function entry(name: string, node: Tree | string): unknown {
  if (typeof node === 'string') return { isFile: true, isDirectory: false, name, file: (ok: (f: File) => void) => setTimeout(() => ok(new File([node], name))) };
  const kids = Object.entries(node).map(([n, c]) => entry(n, c));
  return {
    isFile: false,
    isDirectory: true,
    name,
    createReader: () => {
      let at = 0;
      return { readEntries: (ok: (e: unknown[]) => void) => setTimeout(() => ok(kids.slice(at, (at += 100)))) };
    },
  };
}

function handle(name: string, node: Tree | string): unknown {
  if (typeof node === 'string') return { kind: 'file', name, getFile: async () => new File([node], name) };
  return {
    kind: 'directory',
    name,
    async *values() {
      for (const [n, c] of Object.entries(node)) yield handle(n, c);
    },
  };
}

const many: Tree = {};
for (let i = 0; i < 250; i++) many[`p${String(i).padStart(3, '0')}.png`] = `x${i}`;
const tree: Tree = { NORMAL: { 'a.png': 'a', '.DS_Store': 'junk', sub: { 'c.dcm': 'c' } }, PNEUMONIA: many, '__MACOSX': { '._a.png': 'junk' } };

describe('filesFromDataTransfer', () => {
  it('walks webkitGetAsEntry directories (several readEntries batches), skips junk, keeps relative paths', async () => {
    const dt = { items: [{ kind: 'file', getAsFile: () => null, webkitGetAsEntry: () => entry('drop', tree) }], files: [] };
    const out = await filesFromDataTransfer(dt as never);
    expect(out).toHaveLength(252);
    expect(out[0].path).toBe('drop/NORMAL/a.png');
    expect(out[1].path).toBe('drop/NORMAL/sub/c.dcm');
    expect(out.at(-1)!.path).toBe('drop/PNEUMONIA/p249.png');
    expect(await out.at(-1)!.file.text()).toBe('x249');
  });

  it('prefers File System Access handles when the item has them', async () => {
    const dt = { items: [{ kind: 'file', getAsFile: () => null, webkitGetAsEntry: () => null, getAsFileSystemHandle: async () => handle('drop', tree) }] };
    const out = await filesFromDataTransfer(dt as never);
    expect(out.map((f) => f.path).slice(0, 2)).toEqual(['drop/NORMAL/a.png', 'drop/NORMAL/sub/c.dcm']);
    expect(out).toHaveLength(252);
  });

  it('plain files (no directory API) are kept as they are', async () => {
    const f = new File(['z'], 'z.png');
    expect((await filesFromDataTransfer({ files: [f] })).map((x) => x.path)).toEqual(['z.png']);
    expect((await filesFromDataTransfer({ items: [{ kind: 'file', getAsFile: () => f }] })).map((x) => x.path)).toEqual(['z.png']);
  });
});
