import { describe, expect, it } from 'vitest';
import { PNG } from 'pngjs';
import {
  bestMaskIndex,
  detectSamInterface,
  embeddingCacheKey,
  historyInit,
  historyPush,
  historyRedo,
  historyUndo,
  LatestOnly,
  longestSideShape,
  maskToPng,
  maskToPolygons,
  overlap,
  polygonsToMask,
  resizeBilinear,
  ringArea,
  samPointArrays,
  SamInterfaceError,
  decoderPromptFeeds,
  SamPromptError,
  summarize,
  toFrame,
} from '../../../app/lib/sam';

describe('geometry', () => {
  it('longest side with Python int(x + 0.5) rounding (ResizeLongestSide.get_preprocess_shape)', () => {
    expect(longestSideShape(80, 60, 64)).toMatchObject({ resizedW: 64, resizedH: 48 });
    // 1000×667 → 1024×683 (667·1.024 = 683.008)
    expect(longestSideShape(1000, 667, 1024)).toMatchObject({ resizedW: 1024, resizedH: 683 });
    expect(longestSideShape(3, 1001, 1024).resizedW).toBe(3);
    expect(() => longestSideShape(0, 5, 1024)).toThrow(RangeError);
  });
  it('prompt coordinates scale per axis (apply_coords)', () => {
    const g = longestSideShape(1000, 667, 1024);
    const [x, y] = toFrame(g, 500, 333.5);
    expect(x).toBeCloseTo(512, 9);
    expect(y).toBeCloseTo((333.5 * 683) / 667, 9);
  });
});

describe('prompts in SAM ONNX convention', () => {
  const g = longestSideShape(100, 100, 100);
  it('points get a padding point; a box does not (SAM) and box corners come after the points', () => {
    const a = samPointArrays({ points: [{ x: 10, y: 20, label: 1 }] }, g, 'when-no-box');
    expect(Array.from(a.labels)).toEqual([1, -1]);
    const b = samPointArrays({ points: [{ x: 10, y: 20, label: 0 }], box: [50, 60, 5, 6] }, g, 'when-no-box');
    expect(Array.from(b.labels)).toEqual([0, 2, 3]);
    expect(Array.from(b.coords)).toEqual([10, 20, 5, 6, 50, 60]); // box normalised to top-left / bottom-right
  });
  it('SAM2: box first, padding point always', () => {
    const b = samPointArrays({ points: [{ x: 1, y: 2, label: 1 }], box: [5, 6, 50, 60] }, g, 'always');
    expect(Array.from(b.labels)).toEqual([2, 3, 1, -1]);
  });
  it('a transformers.js graph without input_boxes refuses a box with a clear message', () => {
    const itf = detectSamInterface(
      { inputs: ['pixel_values'], outputs: ['image_embeddings', 'image_positional_embeddings'] },
      { inputs: ['input_points', 'input_labels', 'image_embeddings', 'image_positional_embeddings'], outputs: ['iou_scores', 'pred_masks'] },
    );
    expect(() => decoderPromptFeeds(itf, { points: [], box: [1, 2, 3, 4] }, g, 32)).toThrow(SamPromptError);
    const f = decoderPromptFeeds(itf, { points: [{ x: 1, y: 2, label: 1 }] }, g, 32);
    expect(f.input_labels.type).toBe('int64');
    expect(f.input_points.dims).toEqual([1, 1, 1, 2]);
  });
});

describe('interface detection', () => {
  const enc = { inputs: ['pixel_values'], outputs: ['image_embeddings'] };
  it('tells the three layouts apart', () => {
    expect(detectSamInterface(enc, { inputs: ['image_embeddings', 'point_coords', 'point_labels', 'mask_input', 'has_mask_input'], outputs: ['masks_low_res', 'iou_predictions'] }).layout).toBe('cxr');
    expect(
      detectSamInterface({ inputs: ['input_image'], outputs: ['image_embeddings'] }, {
        inputs: ['image_embeddings', 'point_coords', 'point_labels', 'mask_input', 'has_mask_input', 'orig_im_size'],
        outputs: ['masks', 'iou_predictions', 'low_res_masks'],
      }).layout,
    ).toBe('segment-anything');
  });
  it('names what is missing', () => {
    const bad = () => detectSamInterface(enc, { inputs: ['pixel_values'], outputs: ['logits', 'probabilities'] });
    expect(bad).toThrow(SamInterfaceError);
    expect(bad).toThrow(/Missing input image_embeddings, input point_coords, input point_labels, input mask_input, input has_mask_input, output masks_low_res, output iou_predictions/);
    expect(() => detectSamInterface({ inputs: ['pixel_values'], outputs: ['logits'] }, { inputs: [], outputs: [] })).toThrow(/missing: image_embeddings/);
    expect(() =>
      detectSamInterface(enc, { inputs: ['image_embeddings', 'point_coords', 'point_labels', 'mask_input', 'has_mask_input', 'orig_im_size'], outputs: ['masks', 'iou_predictions'] }),
    ).toThrow(/segment-anything.*missing output low_res_masks/);
  });
});

describe('bilinear resize = torch F.interpolate(bilinear, align_corners=False)', () => {
  it('2×2 → 4×4 matches the values torch gives', () => {
    // torch.nn.functional.interpolate(torch.tensor([[[[1.,2.],[3.,4.]]]]), size=(4,4), mode='bilinear')
    const want = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4];
    expect(Array.from(resizeBilinear(Float32Array.of(1, 2, 3, 4), 2, 2, 4, 4))).toEqual(want);
  });
  it('a crop of a larger grid equals the top-left of the full resize', () => {
    const src = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i));
    const full = resizeBilinear(src, 8, 8, 32, 32);
    const crop = resizeBilinear(src, 8, 8, 20, 13, 32, 32);
    for (let y = 0; y < 13; y++) for (let x = 0; x < 20; x++) expect(crop[y * 20 + x]).toBe(full[y * 32 + x]);
  });
  it('best mask = highest IoU', () => expect(bestMaskIndex([0.2, 0.9, 0.5])).toBe(1));
});

function randomMask(w: number, h: number, seed: number): Uint8Array {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const m = new Uint8Array(w * h);
  for (let i = 0; i < 6; i++) {
    const cx = rnd() * w, cy = rnd() * h, r = 2 + rnd() * 8;
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if ((x - cx) ** 2 + (y - cy) ** 2 < r * r) m[y * w + x] ^= 1;
  }
  m[0] = 1; // touches the border
  m[w + 1] = 1; // diagonal contact with pixel 0
  return m;
}

describe('mask → polygons', () => {
  it('even-odd fill of the polygons gives back the mask exactly (holes, borders, diagonal contacts)', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const m = randomMask(37, 29, seed);
      const rings = maskToPolygons(m, 37, 29);
      expect(Array.from(polygonsToMask(rings, 37, 29))).toEqual(Array.from(m));
    }
  });
  it('a filled rectangle is one clockwise ring of 4 corners; a hole runs the other way', () => {
    const w = 6, h = 5;
    const m = new Uint8Array(w * h);
    for (let y = 1; y < 4; y++) for (let x = 1; x < 5; x++) m[y * w + x] = 1;
    expect(maskToPolygons(m, w, h)).toEqual([[[1, 1], [5, 1], [5, 4], [1, 4]]]);
    m[2 * w + 2] = 0;
    const rings = maskToPolygons(m, w, h);
    expect(rings.length).toBe(2);
    expect(Math.sign(ringArea(rings[0]))).toBe(-Math.sign(ringArea(rings[1])));
  });
});

describe('PNG export', () => {
  it('decodes (pngjs) to the mask at its own size, 255 inside', () => {
    const m = randomMask(23, 17, 9);
    const png = PNG.sync.read(Buffer.from(maskToPng(m, 23, 17)));
    expect([png.width, png.height]).toEqual([23, 17]);
    for (let i = 0; i < m.length; i++) expect(png.data[i * 4]).toBe(m[i] ? 255 : 0);
  });
});

describe('metrics', () => {
  it('Dice and IoU with ignored pixels', () => {
    const o = overlap([1, 1, 0, 0, 1], [1, 0, 0, 1, 0], [0, 0, 0, 0, 1]);
    expect(o).toMatchObject({ pred: 2, truth: 2, inter: 1 });
    expect(o.dice).toBeCloseTo(0.5);
    expect(o.iou).toBeCloseTo(1 / 3);
    expect(overlap([0, 0], [0, 0]).dice).toBe(1);
  });
  it('median and 10th percentile as numpy (linear)', () => {
    const s = summarize([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(s.median).toBe(5.5);
    expect(s.p10).toBeCloseTo(1.9);
  });
});

describe('embedding cache key, undo/redo, hover coalescing', () => {
  it('keys differ by image, model, variant and encoder file', () => {
    const base = { imageSha256: 'a'.repeat(64), modelId: 'tiny-sam', variant: 'fp32', encoderSha256: 'b'.repeat(64) };
    const keys = new Set([base, { ...base, imageSha256: 'c'.repeat(64) }, { ...base, modelId: 'x' }, { ...base, variant: 'int8' }, { ...base, encoderSha256: 'd'.repeat(64) }].map(embeddingCacheKey));
    expect(keys.size).toBe(5);
  });
  it('undo / redo', () => {
    let h = historyInit(0);
    h = historyPush(h, 1);
    h = historyPush(h, 2);
    h = historyUndo(h);
    expect(h.present).toBe(1);
    h = historyRedo(h);
    expect(h.present).toBe(2);
    h = historyPush(historyUndo(h), 5);
    expect(h.future).toEqual([]);
  });
  it('a burst of 20 hover requests during one decode costs one extra decode, with the latest input', async () => {
    const seen: number[] = [];
    let release!: () => void;
    const runner = new LatestOnly<number, number>(
      (x) => new Promise((r) => { release = () => r(x); }),
      (r) => seen.push(r),
    );
    runner.request(0);
    for (let i = 1; i <= 20; i++) runner.request(i);
    release();
    await new Promise((r) => setTimeout(r, 0));
    release();
    await new Promise((r) => setTimeout(r, 0));
    expect(runner.runs).toBe(2);
    expect(seen).toEqual([0, 20]);
  });
});
