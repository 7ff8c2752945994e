"""Tokenizer builders for the exports (HF `tokenizers` objects written as tokenizer.json): a small BERT WordPiece
(BiomedCLIP-style fixtures), CLIP byte-level BPE from vocab/merges (SD 1.x, OpenAI CLIP), fixed-length padding, and
the CLIP BPE files read in place from ../shared. (Moved from clip.py / sd.py, which re-export them.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .data import shared_dir
from .errors import ExportError

# Words every locally built tokenizer knows whole (default prompts plus common report vocabulary); characters are
# always covered too, so any text tokenizes without [UNK] for ASCII.
FIXTURE_WORDS = (
    "a an the of and or with without in on at to for from by is are was were no not there this that "
    "chest x ray xray x-ray radiograph radiology image photo scan film view pa ap lateral frontal portable "
    "normal abnormal healthy clear lungs lung left right bilateral upper lower lobe zone field fields "
    "pneumonia bacterial viral opacity opacities consolidation infiltrate infiltrates effusion pleural "
    "edema cardiomegaly heart mediastinum atelectasis pneumothorax nodule mass covid tuberculosis fibrosis "
    "child pediatric adult patient showing shows shown showing findings finding sign signs evidence "
    "mild moderate severe small large acute chronic diffuse focal patchy hazy increased decreased "
    "medical grayscale high quality detailed"
).split()



def wordpiece_vocab(words: list[str] | None = None) -> list[str]:
    """A small BERT WordPiece vocab: specials ([PAD]=0,[UNK]=1,[CLS]=2,[SEP]=3,[MASK]=4), ASCII characters and their
    ##-continuations, then whole words (lowercase)."""
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    vocab = specials + chars + ["##" + c for c in chars if c.isalnum()]
    seen = set(vocab)
    for w in words or FIXTURE_WORDS:
        # BertPreTokenizer splits punctuation, so only store alphanumeric runs.
        for piece in "".join(ch if ch.isalnum() else " " for ch in w.lower()).split():
            if piece not in seen:
                seen.add(piece)
                vocab.append(piece)
    return vocab


def wordpiece_tokenizer(vocab: list[str], context_length: int):
    """HF tokenizers BERT uncased WordPiece, [CLS] text [SEP], padded/truncated to context_length with [PAD]=0."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    ids = {tok: i for i, tok in enumerate(vocab)}
    tok = Tokenizer(WordPiece(ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=None,
                                                lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", ids["[CLS]"]), ("[SEP]", ids["[SEP]"])])
    tok.decoder = decoders.WordPiece(prefix="##")
    set_fixed_length(tok, context_length, ids["[PAD]"], "[PAD]")
    return tok


def set_fixed_length(tok, length: int, pad_id: int, pad_token: str):
    tok.enable_truncation(max_length=length)
    tok.enable_padding(length=length, pad_id=pad_id, pad_token=pad_token, direction="right")
    return tok


def clip_bpe_tokenizer(vocab: dict[str, int] | str, merges: list[str] | str, context_length: int = 77,
                       pad_token: str | None = "<|endoftext|>", pad_id: int | None = None):
    """CLIP byte-level BPE (as transformers' CLIPTokenizer builds it) as a HF `tokenizers.Tokenizer`, padded and
    truncated to context_length. vocab/merges: dict + list or paths to vocab.json + merges.txt."""
    from transformers import CLIPTokenizer

    if isinstance(merges, list):
        merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in merges]
    hf = CLIPTokenizer(vocab=vocab if not isinstance(vocab, Path) else str(vocab),
                       merges=merges if not isinstance(merges, Path) else str(merges))
    tok = hf.backend_tokenizer
    if pad_id is None:
        pad_id = tok.token_to_id(pad_token)
    else:
        pad_token = tok.id_to_token(pad_id) or "!"
    return set_fixed_length(tok, context_length, pad_id, pad_token)


def encode_ids(tok, texts: list[str]) -> np.ndarray:
    return np.array([e.ids for e in tok.encode_batch(texts)], dtype=np.int64)


def shared_clip_tokenizer_files() -> tuple[Path, Path]:
    """OpenAI CLIP BPE (SD 1.x's tokenizer) from ../shared (or $CXR_SHARED), read in place at run time."""
    d = shared_dir() / "weights" / "clip-tokenizer" / "derived-hf-format"
    vocab, merges = d / "vocab.json", d / "merges.txt"
    if not (vocab.exists() and merges.exists()):
        raise ExportError(f"CLIP tokenizer files not found in {d} (set CXR_SHARED to the shared folder)")
    return vocab, merges
