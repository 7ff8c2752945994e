import { describe, expect, it } from 'vitest';
import { bestThreshold } from '../../../app/lib/metrics/binary';
import { cosineSimilarity, l2Normalize, labelEmbedding, zeroShot } from '../../../app/lib/clip/zero-shot';

describe('zero-shot', () => {
  it('normalization and cosine', () => {
    expect(Array.from(l2Normalize([3, 4]))).toEqual([0.6000000238418579, 0.800000011920929]);
    expect(cosineSimilarity([1, 0], [0, 2])).toBe(0);
    expect(cosineSimilarity([1, 1], [2, 2])).toBeCloseTo(1, 12);
  });

  it('label embedding = renormalized mean of normalized prompt embeddings', () => {
    const e = labelEmbedding([[10, 0], [0, 1]]);
    expect(e[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(e[1]).toBeCloseTo(Math.SQRT1_2, 6);
  });

  it('softmax over logit-scaled cosines; auto label, confidence, calibrated threshold', () => {
    const labels = [
      { label: 'NORMAL', embeds: [[1, 0, 0]] },
      { label: 'PNEUMONIA', embeds: [[0, 1, 0], [0, 2, 0.0001]] },
    ];
    const img = [0.8, 0.6, 0]; // cos 0.8 vs ~0.6
    const [r] = zeroShot(img, labels, 100);
    const pn = 1 / (1 + Math.exp(100 * (0.8 - 0.6)));
    expect(r.probabilities.PNEUMONIA).toBeCloseTo(pn, 5);
    expect(r.autoLabel).toBe('NORMAL');
    expect(r.confidence).toBeCloseTo(1 - pn, 6);
    const [t] = zeroShot(img, labels, 100, { positiveLabel: 'PNEUMONIA', threshold: 1e-9 });
    expect(t.autoLabel).toBe('PNEUMONIA');
    const batch = zeroShot(new Float32Array([0.8, 0.6, 0, 0, 1, 0]), labels, 100, { dim: 3 });
    expect(batch.map((b) => b.autoLabel)).toEqual(['NORMAL', 'PNEUMONIA']);
  });

  it('sigmoid scoring (SigLIP): an independent sigmoid(scale · cos + bias) per label, not summing to 1', () => {
    const labels = [
      { label: 'A', embeds: [[1, 0, 0]] },
      { label: 'B', embeds: [[0, 1, 0]] },
    ];
    const [r] = zeroShot([0.8, 0.6, 0], labels, 10, { scoring: 'sigmoid', logitBias: -1.5 });
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    expect(r.scoring).toBe('sigmoid');
    expect(r.probabilities.A).toBeCloseTo(sig(10 * 0.8 - 1.5), 6);
    expect(r.probabilities.B).toBeCloseTo(sig(10 * 0.6 - 1.5), 6);
    expect(r.probabilities.A + r.probabilities.B).toBeGreaterThan(1.5);
    expect(r.autoLabel).toBe('A');
    expect(zeroShot([0.8, 0.6, 0], labels, 10)[0].scoring).toBe('softmax');
  });

  it('a threshold on zero-shot P(PNEUMONIA) calibrated by Youden J separates the classes', () => {
    expect(bestThreshold([0, 0, 1, 1], [0.01, 0.02, 0.03, 0.04]).threshold).toBe(0.03);
  });
});
