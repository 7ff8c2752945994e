"""Tokenizer of the `cxr-export sd` pipeline (sd.py): the CLIP BPE tokenizer the SD 1.5 text encoder reads
(77 tokens), either the shared tokenizer files or, for the tiny fixture model, a small BPE vocabulary built from the
fixture words and sample prompts."""

from __future__ import annotations

import os
from pathlib import Path

from .tokenizer_builders import FIXTURE_WORDS, clip_bpe_tokenizer, shared_clip_tokenizer_files
from .errors import ExportError


CONTEXT_LENGTH = 77

SAMPLE_PROMPTS = ["a chest X-ray showing pneumonia", "a normal chest X-ray",
                  "Frontal chest radiograph, bilateral patchy opacities!"]


def shared_dir() -> Path:
    env = os.environ.get("CXR_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def tiny_bpe_vocab(num_merges: int = 320) -> tuple[dict[str, int], list[str]]:
    """A small CLIP-style byte-level BPE of our own (not derived from OpenAI's vocab): the 256 byte symbols, their
    `</w>` word-final forms, then `num_merges` merges learned on fixture words by plain BPE (most frequent pair,
    ties broken by the pair's text, so the result is the same on every run), then the two special tokens, last
    as in CLIP."""
    from collections import Counter

    import tokenizers
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=tokenizers.Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    corpus = " ".join(FIXTURE_WORDS * 2 + SAMPLE_PROMPTS).lower()
    words = Counter(tuple(w[:-1]) + (w[-1] + "</w>",) for w, _ in pre.pre_tokenize_str(corpus))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for t in alphabet + [c + "</w>" for c in alphabet]:
        vocab[t] = len(vocab)
    merges: list[str] = []
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merged = best[0] + best[1]
        merges.append(f"{best[0]} {best[1]}")
        if merged not in vocab:
            vocab[merged] = len(vocab)
        new_words: Counter = Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] += n
        words = new_words
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return vocab, merges


def sd_tokenizer(size: str, pretrained: Path | None = None):
    """HF tokenizers.Tokenizer for the text encoder (77 tokens, pad = <|endoftext|>)."""
    if pretrained is not None:
        tdir = pretrained / "tokenizer"
        if (tdir / "vocab.json").exists() and (tdir / "merges.txt").exists():
            return clip_bpe_tokenizer(tdir / "vocab.json", tdir / "merges.txt", CONTEXT_LENGTH)
        if (tdir / "tokenizer.json").exists():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(tdir / "tokenizer.json"))
            eos = tok.token_to_id("<|endoftext|>")
            tok.enable_truncation(CONTEXT_LENGTH)
            tok.enable_padding(length=CONTEXT_LENGTH, pad_id=eos, pad_token="<|endoftext|>")
            return tok
        raise ExportError(f"--pretrained {pretrained}: no tokenizer/ (vocab.json + merges.txt or tokenizer.json)")
    if size == "tiny":
        vocab, merges = tiny_bpe_vocab()
        return clip_bpe_tokenizer(vocab, merges, CONTEXT_LENGTH)
    vocab, merges = shared_clip_tokenizer_files()
    return clip_bpe_tokenizer(vocab, merges, CONTEXT_LENGTH)
