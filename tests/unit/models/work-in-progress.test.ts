import { describe, expect, it } from 'vitest';
import { workInProgress } from '../../../app/store/selectors';

describe('workInProgress: what a reload or an update would stop', () => {
  it('names each running kind of work, and is null when nothing runs', () => {
    const idle = { batch: { running: false }, sam: { eval: { running: false } }, sd: { running: false } };
    expect(workInProgress(idle)).toBeNull();
    expect(workInProgress({ ...idle, batch: { running: true } })).toBe('a batch run');
    expect(workInProgress({ ...idle, sam: { eval: { running: true } } })).toBe('a segmentation evaluation');
    expect(workInProgress({ ...idle, sd: { running: true } })).toBe('a generation');
    expect(workInProgress({ batch: { running: true }, sam: { eval: { running: false } }, sd: { running: true } })).toBe('a batch run and a generation');
  });
});
