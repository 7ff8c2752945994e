import { describe, expect, it } from 'vitest';
import { batchInputSizes, batchRowOutcome } from '../../../app/lib/batch/chunk';
import type { ClassifierResult } from '../../../app/lib/classifier/types';
import type { ModelEntry } from '../../../app/lib/models/manifest-types';

const entry = (id: string, size?: [number, number], resize: 'bilinear' | 'bicubic' = 'bilinear') =>
  ({ id, preprocessing: size ? { size, resize } : undefined }) as unknown as ModelEntry;

describe('batch chunk steps', () => {
  it('resizes once per distinct input size (Preprocessing.size is [height, width])', () => {
    const vit = entry('vit', [224, 224]);
    const clip = entry('clip', [384, 256], 'bicubic');
    const { sizes, index } = batchInputSizes([vit, clip, entry('vit2', [224, 224])]);
    expect(sizes).toEqual([
      { width: 224, height: 224, resize: 'bilinear' },
      { width: 256, height: 384, resize: 'bicubic' },
    ]);
    expect([index(vit), index(clip), index(entry('x', [224, 224]))]).toEqual([0, 1, 0]);
    expect(batchInputSizes([undefined, entry('plain')]).sizes).toEqual([{ width: 224, height: 224, resize: 'bilinear' }]);
  });

  it("a row is 'done' when either model answered, else 'error' with the model's message", () => {
    const cr = { predicted: 'PNEUMONIA', positiveProbability: 0.8, probabilities: [0.2, 0.8], embedding: new Float32Array(2) } as ClassifierResult;
    const done = batchRowOutcome(cr, undefined, 'clip failed');
    expect(done).toMatchObject({ status: 'done', error: undefined, classifierPrediction: 'PNEUMONIA', classifierProbability: 0.8 });
    expect(batchRowOutcome(undefined, undefined, 'classifier: out of memory')).toMatchObject({ status: 'error', error: 'classifier: out of memory' });
    expect(batchRowOutcome(undefined, undefined, undefined).error).toBe('no model output');
  });
});
