/**
 * Text tokenization for CLIP text encoders: tokenizer.json is run by transformers.js's PreTrainedTokenizer (which wraps
 * @huggingface/tokenizers; app/lib/runtime/transformers.ts loads it on the app's ORT). Truncation and padding stay
 * here: transformers.js's `truncation: true` cuts the trailing special token ([SEP] / <|endoftext|>), which CLIP's
 * pooling (argmax of the ids, HF CLIPTextTransformer) needs; HF Python keeps it (tests/unit/clip/tokenize.test.ts).
 * Encode prompts, truncate to the context length keeping the trailing special token like HF's truncation=True, pad
 * with pad_token_id, and pack as int64 [n, context_length].
 */
import type { Transformers } from '../runtime/transformers';

/** The part of transformers.js's PreTrainedTokenizer used here. */
interface TextTokenizer {
  encode(text: string, opts?: { add_special_tokens?: boolean }): number[];
}

export interface ClipTextConfig {
  context_length: number;
  pad_token_id: number;
}

export interface TokenizedBatch {
  /** int64 [n, contextLength], row-major */
  ids: BigInt64Array;
  dims: [number, number];
  /** 1 for real tokens, 0 for padding, same layout as ids */
  attentionMask: Uint8Array;
  /** token count per prompt before padding (after truncation) */
  lengths: number[];
}

export class ClipTokenizer {
  readonly tokenizer: TextTokenizer;
  readonly contextLength: number;
  readonly padTokenId: number;
  private readonly specialIds: Set<number>;

  constructor(transformers: Transformers, tokenizerJson: object, config: ClipTextConfig, tokenizerConfig: object = {}) {
    if (!Number.isInteger(config.context_length) || config.context_length < 2) throw new Error(`CLIP config: bad context_length ${config.context_length}`);
    if (!Number.isInteger(config.pad_token_id) || config.pad_token_id < 0) throw new Error(`CLIP config: bad pad_token_id ${config.pad_token_id}`);
    this.tokenizer = new transformers.PreTrainedTokenizer(tokenizerJson, tokenizerConfig) as unknown as TextTokenizer;
    this.contextLength = config.context_length;
    this.padTokenId = config.pad_token_id;
    this.specialIds = new Set<number>();
    const added = (tokenizerJson as { added_tokens?: { id: number; special?: boolean }[] }).added_tokens ?? [];
    for (const t of added) if (t.special) this.specialIds.add(t.id);
  }

  /**
   * Token ids of one prompt with special tokens, truncated to the context length (no padding). Like HF's
   * truncation=True: the text is shortened, the tokens the post-processor adds ([CLS] … [SEP], <sot> … <eot>) are kept.
   */
  encode(text: string): number[] {
    const full = this.tokenizer.encode(text, { add_special_tokens: true }).map(Number);
    const L = this.contextLength;
    if (full.length <= L) return full;
    const content = this.tokenizer.encode(text, { add_special_tokens: false }).map(Number);
    const added = full.length - content.length;
    if (added >= 0 && added < L) {
      // locate the content inside the full encoding to split prefix / suffix specials
      for (let p = 0; p <= added; p++) {
        let same = true;
        for (let i = 0; i < content.length && same; i++) same = full[p + i] === content[i];
        if (same) {
          const prefix = full.slice(0, p);
          const suffix = full.slice(p + content.length);
          return [...prefix, ...content.slice(0, L - added), ...suffix];
        }
      }
    }
    const last = full[full.length - 1];
    return this.specialIds.has(last) ? [...full.slice(0, L - 1), last] : full.slice(0, L);
  }

  /** Encode prompts into an int64 [n, contextLength] batch padded with pad_token_id. */
  encodeBatch(texts: string[]): TokenizedBatch {
    const L = this.contextLength;
    const ids = new BigInt64Array(texts.length * L).fill(BigInt(this.padTokenId));
    const mask = new Uint8Array(texts.length * L);
    const lengths: number[] = [];
    texts.forEach((t, i) => {
      const e = this.encode(t);
      lengths.push(e.length);
      for (let j = 0; j < e.length; j++) {
        ids[i * L + j] = BigInt(e[j]);
        mask[i * L + j] = 1;
      }
    });
    return { ids, dims: [texts.length, L], attentionMask: mask, lengths };
  }
}

/**
 * Build from tokenizer.json bytes/text/object and the manifest's CLIP config, on `transformers` (loadTransformers of
 * the engine's ORT). Throws on JSON that does not parse or a tokenizer transformers.js cannot build.
 */
export function loadClipTokenizer(transformers: Transformers, tokenizerJson: string | Uint8Array | object, config: ClipTextConfig, tokenizerConfig?: object): ClipTokenizer {
  let json: object;
  if (typeof tokenizerJson === 'string') json = JSON.parse(tokenizerJson);
  else if (tokenizerJson instanceof Uint8Array) json = JSON.parse(new TextDecoder().decode(tokenizerJson));
  else json = tokenizerJson;
  return new ClipTokenizer(transformers, json, config, tokenizerConfig);
}
