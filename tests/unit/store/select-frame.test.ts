/**
 * Frame picks made while a decode runs (issue 18.4): the images slice shows the frame picked last, whatever order
 * the imaging worker's decodes finish in. The worker is replaced by one whose decodes finish when the test says, so
 * every interleaving can be played; the store, the slice and its request bookkeeping are the app's own.
 */
import { describe, expect, it } from 'vitest';
import { create } from 'zustand';
import { createImagesSlice } from '../../../app/store/images';
import { createRaster } from '../../../app/lib/imaging/raster';
import type { AppState } from '../../../app/store/state';

type Pending = { frame: number; finish: () => void };

function frameStore() {
  const pending: Pending[] = [];
  const alerts: string[] = [];
  const decode = (_bytes: ArrayBuffer, opts: { frame: number }) =>
    new Promise((resolve) => {
      const raster = createRaster(2, 2);
      raster.data.fill(opts.frame);
      pending.push({
        frame: opts.frame,
        finish: () => resolve({ ok: true, image: { raster, dicom: { frameIndex: opts.frame, numberOfFrames: 3 }, display: undefined }, thumbnail: raster }),
      });
    });
  const store = create<AppState>()((set, get, api) => ({
    ...(createImagesSlice(set, get, api) as object),
    manifest: undefined,
    chosenModelId: {},
    alert: (m: string) => alerts.push(m),
    workers: { imaging: () => ({ decode }) },
  }) as unknown as AppState);
  const raster = createRaster(2, 2);
  store.setState({
    images: [{ id: 'a', name: 'a.dcm', path: 'a.dcm', bytes: 4, format: 'dicom', raster, thumbnail: raster, source: new ArrayBuffer(4), dicom: { frameIndex: 0, numberOfFrames: 3 } } as never],
    currentId: 'a',
  } as Partial<AppState>);
  const shown = () => store.getState().images[0].dicom!.frameIndex;
  const settle = () => new Promise((r) => setTimeout(r, 0));
  return { store, pending, alerts, shown, settle };
}

describe('selectFrame: the last pick wins', () => {
  it('0 -> 1 (done) -> 0 -> 1 while frame 0 decodes ends on frame 1', async () => {
    const { store, pending, shown, settle } = frameStore();
    const s = store.getState();
    const p1 = s.selectFrame('a', 1);
    pending.shift()!.finish();
    await p1;
    expect(shown()).toBe(1);
    const p0 = s.selectFrame('a', 0);
    const p1b = s.selectFrame('a', 1); // picked while frame 0 still decodes: not "already shown"
    expect(pending.map((p) => p.frame)).toEqual([0, 1]);
    pending[1].finish();
    await settle();
    pending[0].finish(); // the stale decode finishes last and must not replace frame 1
    await Promise.all([p0, p1b]);
    expect(shown()).toBe(1);
    expect(store.getState().images[0].raster.data[0]).toBe(1);
  });

  it('a pick equal to the newest pending request is not decoded twice; one equal to the shown frame is', async () => {
    const { store, pending, shown } = frameStore();
    const s = store.getState();
    const a = s.selectFrame('a', 2);
    const b = s.selectFrame('a', 2);
    expect(pending.length).toBe(1);
    const c = s.selectFrame('a', 0); // back to the frame on screen while 2 decodes: 0 must win
    expect(pending.map((p) => p.frame)).toEqual([2, 0]);
    for (const p of pending) p.finish();
    await Promise.all([a, b, c]);
    expect(shown()).toBe(0);
  });
});
