/**
 * End to end on a CLIP graph written by export-scripts (tiny random BiomedCLIP architecture): the TypeScript
 * tokenizer, Pillow-compatible bicubic preprocessing, onnxruntime-web (Node) and zero-shot maths must reproduce
 * Python's HF tokenizers + Pillow + onnxruntime + numpy on a real image.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import * as ort from 'onnxruntime-web';
import { parseManifest, findModel, fileByRole } from '../../../app/lib/models/manifest';
import { loadClipTokenizer } from '../../../app/lib/clip/tokenize';
import { nodeTransformers } from '../../../app/platform/node/ort';
import { zeroShot } from '../../../app/lib/clip/zero-shot';
import { decodeImageFileNode } from '../../../app/platform/node/decode';
import { toModelInput } from '../../../app/lib/imaging/preprocess';
import { ensureTinyModels, hasClipExporter } from '../helpers/fixtures';
import { lacksShared, PYTHON, readBytes, sharedPath } from '../helpers/shared';

ort.env.wasm.numThreads = 1;
const IMG = 'data/kermany-cxr-224/test/PNEUMONIA';

const PY = `
import json,sys,numpy as np,onnxruntime as ort
from tokenizers import Tokenizer
from PIL import Image
root,img,prompts=sys.argv[1],sys.argv[2],json.loads(sys.argv[3])
m=[e for e in json.load(open(root+'/manifest.json'))['models'] if e['id']=='tiny-biomedclip'][0]
pre=m['preprocessing']; cfg=m['config']
tok=Tokenizer.from_file(root+'/tiny-biomedclip/tokenizer.json')
ids=np.array([e.ids for e in tok.encode_batch(prompts)],dtype=np.int64)
te=ort.InferenceSession(root+'/tiny-biomedclip/text_encoder.onnx').run(None,{'input_ids':ids})[0]
h,w=pre['size']
x=np.asarray(Image.open(img).convert('RGB').resize((w,h),Image.BICUBIC),dtype=np.float32)/255.0
x=((x-np.array(pre['mean'],np.float32))/np.array(pre['std'],np.float32)).transpose(2,0,1)[None].astype(np.float32)
ie=ort.InferenceSession(root+'/tiny-biomedclip/image_encoder.onnx').run(None,{'pixel_values':x})[0]
t=te/np.linalg.norm(te,axis=1,keepdims=True); i=ie/np.linalg.norm(ie,axis=1,keepdims=True)
logits=cfg['logit_scale']*(i@t.T); p=np.exp(logits-logits.max()); p/=p.sum()
print(json.dumps(dict(ids=ids.tolist(),image_embeds=ie[0].tolist(),probs=p[0].tolist())))`;

describe.skipIf(!hasClipExporter || lacksShared(IMG))('exported tiny BiomedCLIP: TS pipeline = Python pipeline', () => {
  let root: string;
  beforeAll(() => {
    root = ensureTinyModels()!;
  });

  it('token ids, image embedding and zero-shot probabilities match', async () => {
    const manifest = parseManifest(JSON.parse(fs.readFileSync(path.join(root, 'manifest.json'), 'utf8')));
    const entry = findModel(manifest, 'tiny-biomedclip')!;
    const v = entry.variants.fp32!;
    const cfg = entry.config as { context_length: number; pad_token_id: number; logit_scale: number };
    const prompts = ['a chest X-ray showing pneumonia', 'a normal chest X-ray',
      'bilateral patchy opacities in both lower lung zones with pleural effusion and cardiomegaly severe acute'];
    const file = path.join(sharedPath(IMG), fs.readdirSync(sharedPath(IMG)).sort()[3]);
    const ref = JSON.parse(execFileSync(PYTHON, ['-c', PY, root, file, JSON.stringify(prompts)]).toString());

    const tok = loadClipTokenizer(await nodeTransformers(), fs.readFileSync(path.join(root, fileByRole(v, 'tokenizer')!.path), 'utf8'), cfg);
    const b = tok.encodeBatch(prompts);
    expect(prompts.map((_, i) => Array.from(b.ids.subarray(i * cfg.context_length, (i + 1) * cfg.context_length), Number))).toEqual(ref.ids);

    const ts = await ort.InferenceSession.create(fs.readFileSync(path.join(root, fileByRole(v, 'text_encoder')!.path)));
    const te = await ts.run({ input_ids: new ort.Tensor('int64', b.ids, b.dims) });
    const D = te.text_embeds.dims[1];
    const tdata = te.text_embeds.data as Float32Array;

    const d = await decodeImageFileNode(readBytes(file));
    const x = toModelInput(d.raster, entry.preprocessing!);
    const is = await ort.InferenceSession.create(fs.readFileSync(path.join(root, fileByRole(v, 'image_encoder')!.path)));
    const ie = await is.run({ pixel_values: new ort.Tensor('float32', x, [1, 3, ...entry.preprocessing!.size]) });
    const emb = ie.image_embeds.data as Float32Array;
    let maxDiff = 0;
    for (let i = 0; i < D; i++) maxDiff = Math.max(maxDiff, Math.abs(emb[i] - ref.image_embeds[i]));
    expect(maxDiff).toBeLessThan(0.05); // jpeg-js vs libjpeg decode differences only

    const labels = prompts.map((p, i) => ({ label: `L${i}`, embeds: [tdata.subarray(i * D, (i + 1) * D)] }));
    const [z] = zeroShot(emb, labels, cfg.logit_scale);
    ref.probs.forEach((p: number, i: number) => expect(Math.abs(z.probabilities[`L${i}`] - p)).toBeLessThan(0.01));
  });
});
