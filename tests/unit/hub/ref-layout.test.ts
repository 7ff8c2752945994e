/**
 * app/lib/hub: what a user types becomes the Hub's URLs (huggingface_hub's hf_hub_url layout), and a config.json +
 * file list becomes a family and its files, or a message naming what is missing.
 */
import { describe, expect, it } from 'vitest';
import { familyLayout, hubFileUrl, hubTreeUrl, parseHubRef, parseHubTree, planHubFiles, preprocessingFromConfig, type HubFileInfo } from '../../../app/lib/hub';

describe('parseHubRef', () => {
  it('reads ids, revisions and mirror URLs', () => {
    expect(parseHubRef('hf:Xenova/clip-vit-base-patch32')).toEqual({ base: 'https://huggingface.co', repo: 'Xenova/clip-vit-base-patch32', revision: 'main' });
    expect(parseHubRef('Xenova/slimsam-77-uniform@v1.0', 'http://127.0.0.1:9/')).toEqual({ base: 'http://127.0.0.1:9', repo: 'Xenova/slimsam-77-uniform', revision: 'v1.0' });
    expect(parseHubRef('https://mirror.example/hf/Xenova/vit-base-patch16-224/tree/abc123')).toEqual({ base: 'https://mirror.example/hf', repo: 'Xenova/vit-base-patch16-224', revision: 'abc123' });
    const ref = parseHubRef('hf:o/n@refs/pr/1');
    expect(hubFileUrl(ref, 'onnx/model.onnx')).toBe('https://huggingface.co/o/n/resolve/refs%2Fpr%2F1/onnx/model.onnx');
    expect(hubTreeUrl(ref)).toBe('https://huggingface.co/api/models/o/n/tree/refs%2Fpr%2F1?recursive=true');
  });
  it('refuses what is not a repo', () => {
    expect(() => parseHubRef('hf:justaname')).toThrow(/not a Hub repo id/);
    expect(() => parseHubRef('hf:o/n@../x')).toThrow(/not a revision/);
    expect(() => parseHubRef('https://host/onlyone')).toThrow(/ends in \/owner\/name/);
    expect(() => parseHubRef('o/n', 'ftp://x')).toThrow(/not a Hub base URL/);
  });
});

const sha = (c: string) => c.repeat(64);
const files = (paths: string[]): HubFileInfo[] => paths.map((p, i) => ({ path: p, size: 10 + i, sha256: sha((i % 10).toString()) }));

describe('familyLayout + planHubFiles', () => {
  it('recognises CLIP / SigLIP / SAM / classifiers and refuses other architectures by name', () => {
    expect(familyLayout({ architectures: ['CLIPModel'] }, 'r').family).toBe('clip');
    expect(familyLayout({ architectures: ['SiglipModel'] }, 'r').family).toBe('clip');
    expect(familyLayout({ architectures: ['SamModel'] }, 'r').family).toBe('sam');
    expect(familyLayout({ architectures: ['Swinv2ForImageClassification'] }, 'r').family).toBe('classifier');
    expect(() => familyLayout({ architectures: ['BertModel'] }, 'o/bert')).toThrow(/o\/bert: architecture BertModel is not one the app runs \(CLIPModel, SiglipModel, SamModel, \*ForImageClassification\)/);
    expect(() => familyLayout({}, 'o/x')).toThrow(/names no architectures/);
  });
  it('offers each dtype whose graphs are all there, and names the missing files otherwise', () => {
    const sam = familyLayout({ architectures: ['SamModel'] }, 'r');
    const plan = planHubFiles(sam, files(['config.json', 'preprocessor_config.json', 'onnx/vision_encoder.onnx', 'onnx/prompt_encoder_mask_decoder.onnx', 'onnx/vision_encoder_quantized.onnx', 'onnx/prompt_encoder_mask_decoder_quantized.onnx', 'onnx/vision_encoder_fp16.onnx']), 'r');
    expect(plan.variants.map((v) => v.dtype)).toEqual(['fp32', 'int8']);
    expect(plan.variants[1].files.prompt_decoder.path).toBe('onnx/prompt_encoder_mask_decoder_quantized.onnx');
    expect(() => planHubFiles(sam, files(['config.json', 'preprocessor_config.json', 'onnx/vision_encoder.onnx']), 'o/sam')).toThrow(/o\/sam \(sam\) lacks onnx\/prompt_encoder_mask_decoder\.onnx/);
    const clip = familyLayout({ architectures: ['CLIPModel'] }, 'r');
    expect(() => planHubFiles(clip, files(['preprocessor_config.json', 'onnx/vision_model.onnx', 'onnx/text_model.onnx']), 'o/clip')).toThrow(/lacks tokenizer\.json/);
    expect(() => planHubFiles(clip, files(['tokenizer.json', 'preprocessor_config.json', 'onnx/vision_model.onnx', 'onnx/text_model_fp16.onnx']), 'o/clip')).toThrow(/one dtype with all of/);
  });
  it('reads the Hub tree listing: LFS oid as sha256, directories dropped', () => {
    const t = parseHubTree(
      [
        { type: 'directory', oid: 'x', size: 0, path: 'onnx' },
        { type: 'file', oid: 'aa', size: 134, path: 'onnx/model.onnx', lfs: { oid: sha('a'), size: 5000, pointerSize: 134 } },
        { type: 'file', oid: 'bb', size: 20, path: 'config.json' },
      ],
      'r',
    );
    expect(t).toEqual([
      { path: 'onnx/model.onnx', size: 5000, sha256: sha('a') },
      { path: 'config.json', size: 20, sha256: undefined },
    ]);
  });
});

describe('preprocessingFromConfig', () => {
  it('CLIP (crop size, bicubic), ViT (height/width, bilinear), no normalisation; unknown resample refused', () => {
    expect(preprocessingFromConfig({ do_center_crop: true, crop_size: { height: 224, width: 224 }, size: { shortest_edge: 224 }, resample: 3, image_mean: [0.1, 0.2, 0.3], image_std: [1, 2, 3] }, 'r')).toEqual({
      size: [224, 224],
      resize: 'bicubic',
      mean: [0.1, 0.2, 0.3],
      std: [1, 2, 3],
      layout: 'NCHW',
    });
    expect(preprocessingFromConfig({ size: { height: 32, width: 48 }, resample: 2, do_normalize: false }, 'r')).toMatchObject({ size: [32, 48], resize: 'bilinear', mean: [0, 0, 0], std: [1, 1, 1] });
    expect(() => preprocessingFromConfig({ size: 8, resample: 1 }, 'o/r')).toThrow(/PIL resample 1/);
  });
});
