import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { loadClipTokenizer } from '../../../app/lib/clip/tokenize';
import { nodeTransformers } from '../../../app/platform/node/ort';
import { hasPython, PYTHON } from '../helpers/shared';

const PROMPTS = [
  'a chest x-ray showing pneumonia',
  'A normal chest X-ray.',
  'bilateral consolidation with air bronchograms in both lower lobes of the lungs, suggestive of pneumonia',
  'unknownword xyz',
];

/** A small BERT-style WordPiece tokenizer.json (the BiomedCLIP/PubMedBERT layout), built and run by HF tokenizers. */
const PY = `
import json,sys
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
words="a chest x - ray show ##ing pneumonia normal . bilateral consolidation with air bronch ##ogram ##s in both lower lobe ##s of the lung suggestive , no".split()
vocab={t:i for i,t in enumerate(["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]"]+words)}
tok=Tokenizer(models.WordPiece(vocab=vocab,unk_token="[UNK]"))
tok.normalizer=normalizers.BertNormalizer(lowercase=True)
tok.pre_tokenizer=pre_tokenizers.BertPreTokenizer()
tok.post_processor=processors.TemplateProcessing(single="[CLS] $A [SEP]",pair="[CLS] $A [SEP] $B:1 [SEP]:1",special_tokens=[("[CLS]",2),("[SEP]",3)])
tok.add_special_tokens(["[PAD]","[UNK]","[CLS]","[SEP]","[MASK]"])
tok.save(sys.argv[1])
L=int(sys.argv[2])
tok.enable_truncation(max_length=L); tok.enable_padding(length=L,pad_id=0,pad_token="[PAD]")
print(json.dumps([e.ids for e in tok.encode_batch(json.loads(sys.argv[3]))]))
`;

describe.skipIf(!hasPython)('ClipTokenizer vs HF tokenizers (Python)', () => {
  it('WordPiece prompts: ids, truncation keeping [SEP], padding, int64 packing', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cxr-tok-'));
    const file = path.join(dir, 'tokenizer.json');
    const L = 12;
    const expected = JSON.parse(execFileSync(PYTHON, ['-c', PY, file, String(L), JSON.stringify(PROMPTS)]).toString()) as number[][];
    const tok = loadClipTokenizer(await nodeTransformers(), fs.readFileSync(file, 'utf8'), { context_length: L, pad_token_id: 0 });
    const batch = tok.encodeBatch(PROMPTS);
    expect(batch.dims).toEqual([PROMPTS.length, L]);
    expect(batch.ids).toBeInstanceOf(BigInt64Array);
    const got = PROMPTS.map((_, i) => Array.from(batch.ids.subarray(i * L, (i + 1) * L), Number));
    expect(got).toEqual(expected);
    expect(got[2][L - 1]).toBe(3); // truncated prompt still ends with [SEP]
    expect(batch.lengths[2]).toBe(L);
    expect(Array.from(batch.attentionMask.subarray(0, L)).filter(Boolean).length).toBe(batch.lengths[0]);
    fs.rmSync(dir, { recursive: true });
  });
});
