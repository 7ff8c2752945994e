/**
 * pipelineBatchChunks (app/services/batch.ts), the batch view's loop: chunk k+1 is decoding while chunk k finishes,
 * every row is taken once, rows in flight are never picked again, and a cancel leaves the undone rows pending.
 */
import { describe, expect, it } from 'vitest';
import { pipelineBatchChunks } from '../../../app/services/batch';

function run(n: number, size: number, cancelAfter?: number) {
  const pending = new Set(Array.from({ length: n }, (_, i) => i));
  const log: string[] = [];
  let finished = 0;
  let cancelled = false;
  const p = pipelineBatchChunks(
    (inFlight) => {
      const rows = [...pending].filter((r) => !inFlight.has(r)).slice(0, size);
      return rows.length ? rows : null;
    },
    async (rows) => {
      log.push(`decode ${rows[0]}`);
      await new Promise((r) => setTimeout(r, 5));
      log.push(`decoded ${rows[0]}`);
      return rows;
    },
    async (rows) => {
      log.push(`finish ${rows[0]}`);
      await new Promise((r) => setTimeout(r, 20));
      for (const r of rows) pending.delete(r);
      log.push(`finished ${rows[0]}`);
      if (++finished === cancelAfter) cancelled = true;
    },
    () => cancelled,
  );
  return p.then(() => ({ log, pending }));
}

describe('pipelineBatchChunks', () => {
  it('decodes the next chunk while the current one finishes, and takes every row once', async () => {
    const { log, pending } = await run(10, 4);
    expect(pending.size).toBe(0);
    expect(log.filter((l) => l.startsWith('finish ')).map((l) => l.split(' ')[1])).toEqual(['0', '4', '8']);
    // chunk 4's decode starts before chunk 0 has finished
    expect(log.indexOf('decode 4')).toBeLessThan(log.indexOf('finished 0'));
    expect(log.indexOf('decode 4')).toBeGreaterThan(log.indexOf('decoded 0'));
  });

  it('a cancel after a chunk leaves the rest pending (the chunk decoded meanwhile is not finished)', async () => {
    const { log, pending } = await run(12, 4, 1);
    expect(log.filter((l) => l.startsWith('finished '))).toEqual(['finished 0']);
    expect([...pending].sort((a, b) => a - b)).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
  });
});
