import { describe, expect, it } from 'vitest';
import { workInProgress } from '../../../app/store/selectors';

describe('workInProgress: what a reload or an update would stop', () => {
  it('names each running kind of work, and is null when nothing runs', () => {
    const idle = { batch: { running: false }, segment: { eval: { running: false } }, gen: { running: false } };
    expect(workInProgress(idle)).toBeNull();
    expect(workInProgress({ ...idle, batch: { running: true } })).toBe('a batch run');
    expect(workInProgress({ ...idle, segment: { eval: { running: true } } })).toBe('a segmentation evaluation');
    expect(workInProgress({ ...idle, gen: { running: true } })).toBe('a generation');
    expect(workInProgress({ batch: { running: true }, segment: { eval: { running: false } }, gen: { running: true } })).toBe('a batch run and a generation');
  });
});
