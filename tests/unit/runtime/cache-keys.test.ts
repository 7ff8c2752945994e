import { describe, expect, it } from 'vitest';
import { MemoryModelStore } from '../../../app/lib/models/model-cache';
import { cacheKeyForUrl, LocalKeyModelStore, urlForCacheKey } from '../../../app/lib/models/cache-keys';

describe('local-folder cache keys', () => {
  it('maps local:// URLs to http(s) keys and back; other URLs unchanged', () => {
    const k = cacheKeyForUrl('local://models/pneumonia-vit/model.onnx');
    expect(k).toMatch(/^https?:\/\/[^/]+\/__local-models__\/models\/pneumonia-vit\/model\.onnx$/);
    expect(urlForCacheKey(k)).toBe('local://models/pneumonia-vit/model.onnx');
    expect(cacheKeyForUrl('https://x.test/models/a.onnx')).toBe('https://x.test/models/a.onnx');
  });

  it('the wrapped store stores under the mapped key and lists the original URL', async () => {
    const inner = new MemoryModelStore();
    const store = new LocalKeyModelStore(inner);
    const url = 'local://folder/m/model.onnx';
    await store.put(new Uint8Array([1, 2, 3]), { url, path: 'm/model.onnx', modelId: 'm', dtype: 'fp32', bytes: 3, sha256: 'abc', storedAt: 0 });
    expect((await inner.list())[0].url).toBe(cacheKeyForUrl(url));
    expect((await store.list())[0].url).toBe(url);
    expect(await store.has(url, 'abc')).toBe(true);
    expect(await store.get(url)).toEqual(new Uint8Array([1, 2, 3]));
    await store.deleteUrl(url);
    expect(await store.list()).toEqual([]);
  });
});
