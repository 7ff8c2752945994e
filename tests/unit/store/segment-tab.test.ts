/**
 * The Segment tab's claim on the cores (issue 21.1): while the tab is shown, whenSegmentClosed (awaited by the
 * classifier / CLIP idle prewarm before each session) stays pending, and resolves when the tab is left; with the tab
 * not shown it resolves at once. The store and the slice are the app's own.
 */
import { describe, expect, it } from 'vitest';
import { create } from 'zustand';
import { createSamSlice } from '../../../app/store/sam';
import type { AppState } from '../../../app/store/state';

describe('Segment tab shown: the idle prewarm waits', () => {
  it('whenSegmentClosed resolves at once when closed, waits while shown, resolves when left', async () => {
    const store = create<AppState>()((set, get, api) => ({ ...(createSamSlice(set, get, api) as object) }) as unknown as AppState);
    const s = () => store.getState();
    let early = false;
    await s().whenSegmentClosed().then(() => (early = true));
    expect(early).toBe(true);
    s().segmentTabShown(true);
    expect(s().sam.tabOpen).toBe(true);
    let done = false;
    const waiting = s().whenSegmentClosed().then(() => (done = true));
    s().segmentSet({ opacity: 0.3 }); // another change of the store does not release it
    await new Promise((r) => setTimeout(r, 20));
    expect(done).toBe(false);
    s().segmentTabShown(false);
    await waiting;
    expect(done).toBe(true);
  });
});
