"""`cxr-export clip`: a CLIP pair (image encoder + text encoder + tokenizer) to ONNX for zero-shot labelling.

Default: BiomedCLIP through open_clip (timm ViT-B/16 image tower + HF PubMedBERT text tower, CustomTextCLIP).
Sources, in order of precedence:
  --random-init --size tiny|full   the same architecture with random weights, built offline (configs in this file);
  --checkpoint PATH                a local open_clip folder (open_clip_config.json + weights) -> 'local-dir:PATH';
  --hf-clip DIR                    a transformers CLIPModel folder (config.json, weights, tokenizer files);
  --model NAME [--pretrained TAG]  any open_clip name, e.g. the BiomedCLIP hub id (needs the network once).

Graphs: image_encoder.onnx (pixel_values float32 [b,3,S,S] -> image_embeds [b,D]) and text_encoder.onnx
(input_ids int64 [b,L] -> text_embeds [b,D]); embeddings are NOT normalized (the app normalizes and multiplies by
config.logit_scale). The text graph derives the attention mask from the pad id inside, as open_clip does.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from . import manifest as mf
from .checkpoints import transformers_config
from .errors import ExportError

BIOMEDCLIP_HUB = "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224"
PUBMEDBERT = "microsoft/BiomedNLP-BiomedBERT-base-uncased-abstract"
DEFAULT_PROMPTS = {"PNEUMONIA": ["a chest X-ray showing pneumonia"], "NORMAL": ["a normal chest X-ray"]}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
OPSET = 17

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


# ----------------------------------------------------------------------------------------------------------------
# Small shared helpers for the clip / sam / sd / fixtures families (export, run and atomic folders come from
# onnx_utils / parity; check_parity adds a magnitude-relative tolerance).
# ----------------------------------------------------------------------------------------------------------------

from .onnx_utils import atomic_dir  # noqa: E402  (re-exported for sam / sd / fixtures)
from .parity import max_abs_diff  # noqa: E402


def torch_threads(*modules) -> None:
    """At most 2 torch threads ($CXR_TORCH_THREADS); 1 for tiny models (< 5M parameters), where a second thread only
    adds synchronisation (several times slower on a busy 2-core machine)."""
    import torch

    n = max(1, min(2, int(os.environ.get("CXR_TORCH_THREADS", "2"))))
    if modules and sum(p.numel() for m in modules for p in m.parameters()) < 5_000_000:
        n = 1
    torch.set_num_threads(n)


def export_onnx(module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
                dynamic_axes: dict | None = None) -> Path:
    """torch -> ONNX (TorchScript exporter, opset 17; >2 GB graphs get one `<name>.onnx.data`)."""
    import torch

    from .onnx_utils import export

    # nn.MultiheadAttention's fused inference path (open_clip towers) has no ONNX symbolic: trace the plain path
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        return export(module.eval(), args, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)


def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from .parity import run_onnx as _run

    return _run(path, feeds)


def check_parity(name: str, torch_out: dict[str, np.ndarray], onnx_out: dict[str, np.ndarray], atol: float,
                 rtol: float = 0.0) -> float:
    """Max abs diff over the outputs; raises ExportError past atol + rtol * max|reference|."""
    worst = 0.0
    for key, ref in torch_out.items():
        if key not in onnx_out:
            raise ExportError(f"parity failed for {name}: ONNX output {key!r} missing")
        diff = max_abs_diff(ref, onnx_out[key])
        limit = atol + rtol * float(np.max(np.abs(ref))) if np.size(ref) else atol
        if not diff <= limit:
            raise ExportError(f"parity failed for {name}:{key}: max abs diff {diff:.3g} > {limit:.3g} "
                              f"(atol {atol:g} + rtol {rtol:g} x max|ref| {float(np.max(np.abs(ref))):.3g})")
        worst = max(worst, diff)
    return worst


def write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def models_dir_default() -> Path:
    return Path(__file__).resolve().parents[2] / "public" / "models"


def add_common_args(p: argparse.ArgumentParser, default_id: str) -> None:
    p.add_argument("--out-dir", type=Path, default=models_dir_default(),
                   help="models root holding manifest.json (default: public/models)")
    p.add_argument("--id", dest="model_id", default=default_id, help=f"model id / folder name (default {default_id})")
    p.add_argument("--random-init", action="store_true", help="random weights, architecture built offline")
    p.add_argument("--size", choices=["tiny", "full"], default="full", help="with --random-init: tiny or full size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", type=float, default=1e-4, help="ONNX vs PyTorch parity tolerance")


def seed_all(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


# ----------------------------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# Model construction
# ----------------------------------------------------------------------------------------------------------------

BIOMED_SIZES = {
    # full = BiomedCLIP-PubMedBERT_256-vit_base_patch16_224 (ViT-B/16 224 + PubMedBERT base, embed 512, ctx 256)
    "full": dict(embed_dim=512, image_size=224, timm=None, context_length=256,
                 bert=dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                           intermediate_size=3072, max_position_embeddings=512)),
    "tiny": dict(embed_dim=32, image_size=32, timm=dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2),
                 context_length=16,
                 bert=dict(vocab_size=None, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                           intermediate_size=64, max_position_embeddings=64)),
}


@contextlib.contextmanager
def _offline_open_clip(timm_kwargs: dict | None, hf_config) -> Iterator[None]:
    """open_clip builds its timm trunk by name and downloads the HF text config; inside this block the trunk gets
    size overrides and the text tower gets hf_config, so the exact open_clip classes are built offline."""
    import open_clip.hf_model as hfm
    import open_clip.timm_model as tm

    orig_create = tm.timm.create_model
    orig_autoconfig = hfm.AutoConfig

    def create_model(name, **kw):
        kw.update(timm_kwargs or {})
        return orig_create(name, **kw)

    class _AutoConfig:
        @staticmethod
        def from_pretrained(*_a, **_k):
            return hf_config

    tm.timm.create_model = create_model
    hfm.AutoConfig = _AutoConfig
    try:
        yield
    finally:
        tm.timm.create_model = orig_create
        hfm.AutoConfig = orig_autoconfig


def build_random_biomedclip(size: str, seed: int = 0):
    """(model, tokenizer, info): open_clip CustomTextCLIP with BiomedCLIP's model config, random weights, no network."""
    import open_clip
    from transformers import BertConfig

    spec = BIOMED_SIZES[size]
    vocab = wordpiece_vocab()
    bert_kw = dict(spec["bert"])
    bert_kw["vocab_size"] = bert_kw["vocab_size"] or len(vocab)
    bert_cfg = BertConfig(**bert_kw, pad_token_id=0, attn_implementation="eager")
    model_cfg = {
        "embed_dim": spec["embed_dim"],
        "vision_cfg": {"timm_model_name": "vit_base_patch16_224", "timm_model_pretrained": False, "timm_pool": "",
                       "timm_proj": "linear", "image_size": spec["image_size"]},
        "text_cfg": {"hf_model_name": PUBMEDBERT, "hf_tokenizer_name": PUBMEDBERT, "hf_proj_type": "mlp",
                     "hf_pooler_type": "cls_last_hidden_state_pooler", "context_length": spec["context_length"],
                     "hf_model_pretrained": False},
    }
    seed_all(seed)
    with _offline_open_clip(spec["timm"], bert_cfg):
        model = open_clip.model.CustomTextCLIP(**model_cfg)
    model.eval()
    tok = wordpiece_tokenizer(vocab, spec["context_length"])
    info = dict(context_length=spec["context_length"], pad_token_id=0, image_size=spec["image_size"],
                mean=OPENAI_MEAN, std=OPENAI_STD, interpolation="bicubic", model_cfg=model_cfg,
                source=f"random-init ({size}) of {BIOMEDCLIP_HUB} architecture", license="MIT",
                name=f"BiomedCLIP ({size}, random weights)")
    return model, tok, info


def build_random_open_clip(name: str, size: str, seed: int = 0):
    """Any built-in open_clip config with random weights; --size tiny shrinks both towers."""
    import open_clip
    from open_clip.tokenizer import SimpleTokenizer

    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ExportError(f"open_clip has no model config named {name!r} (see open_clip.list_models())")
    cfg = json.loads(json.dumps(cfg))
    if "hf_model_name" in cfg.get("text_cfg", {}) or "timm_model_name" in cfg.get("vision_cfg", {}):
        raise ExportError(f"--random-init supports native open_clip towers or BiomedCLIP; {name} uses timm/HF towers")
    if size == "tiny":
        cfg["embed_dim"] = 32
        cfg["vision_cfg"].update(layers=2, width=32, head_width=16, patch_size=8, image_size=32)
        cfg["text_cfg"].update(width=32, heads=2, layers=2)
    seed_all(seed)
    model = open_clip.model.CLIP(**cfg).eval()
    st = SimpleTokenizer()
    ctx = cfg["text_cfg"].get("context_length", 77)
    merges = [" ".join(m) for m, _ in sorted(st.bpe_ranks.items(), key=lambda kv: kv[1])]
    tok = clip_bpe_tokenizer(_open_clip_vocab(st), merges, ctx, pad_id=0)  # open_clip pads with 0
    img = cfg["vision_cfg"].get("image_size", 224)
    info = dict(context_length=ctx, pad_token_id=0, image_size=img, mean=OPENAI_MEAN, std=OPENAI_STD,
                interpolation="bicubic", model_cfg=cfg, source=f"random-init ({size}) of open_clip {name}",
                license="MIT", name=f"{name} ({size}, random weights)")
    return model, tok, info


def _open_clip_vocab(st) -> dict[str, int]:
    """open_clip's SimpleTokenizer vocab with its specials under the names HF CLIP tokenizers use."""
    rename = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    return {rename.get(k, k): v for k, v in st.encoder.items()}


def load_open_clip(model_name: str, pretrained: str | None):
    """Pretrained open_clip model + tokenizer (hub id, local-dir: or name + tag)."""
    import open_clip

    try:
        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        oc_tok = open_clip.get_tokenizer(model_name)
    except Exception as exc:  # network, missing files, wrong config
        raise ExportError(f"could not load open_clip model {model_name!r}"
                          f"{' (' + pretrained + ')' if pretrained else ''}: {exc}") from exc
    model.eval()
    pp = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = pp.get("size", getattr(model.visual, "image_size", 224))
    size = size[0] if isinstance(size, (list, tuple)) else size
    ctx = getattr(oc_tok, "context_length", 77)
    if hasattr(oc_tok, "tokenizer") and hasattr(oc_tok.tokenizer, "backend_tokenizer"):  # HFTokenizer
        hf = oc_tok.tokenizer
        tok = set_fixed_length(hf.backend_tokenizer, ctx, hf.pad_token_id, hf.pad_token)
        pad_id = hf.pad_token_id
    else:  # open_clip SimpleTokenizer (OpenAI BPE), pads with 0
        st = oc_tok
        merges = [" ".join(m) for m, _ in sorted(st.bpe_ranks.items(), key=lambda kv: kv[1])]
        tok = clip_bpe_tokenizer(_open_clip_vocab(st), merges, ctx, pad_id=0)
        pad_id = 0
    info = dict(context_length=ctx, pad_token_id=pad_id, image_size=int(size),
                mean=tuple(pp.get("mean", OPENAI_MEAN)), std=tuple(pp.get("std", OPENAI_STD)),
                interpolation=pp.get("interpolation", "bicubic"), source=model_name + (f" ({pretrained})" if pretrained else ""),
                license="MIT" if "BiomedCLIP" in model_name else "see source", name=model_name)
    return model, tok, info


def load_hf_clip(path: str, random_size: str | None = None, seed: int = 0):
    """transformers CLIPModel (folder), or with random_size a random CLIPModel (tiny/full ViT-B/32 shape)."""
    import torch
    from transformers import CLIPConfig, CLIPModel

    if random_size:
        if random_size == "tiny":
            cfg = CLIPConfig(text_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                              num_attention_heads=2, vocab_size=49408, max_position_embeddings=77),
                             vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                num_attention_heads=2, image_size=32, patch_size=8),
                             projection_dim=32)
        else:
            cfg = CLIPConfig()
        seed_all(seed)
        model = CLIPModel(cfg).eval()
        from .sd import shared_clip_tokenizer_files  # vocab.json + merges.txt from ../shared at run time

        vocab, merges = shared_clip_tokenizer_files()
        tok = clip_bpe_tokenizer(vocab, merges, 77)
        src, name = f"random-init ({random_size}) transformers CLIPModel", f"CLIP ({random_size}, random weights)"
    else:
        p, _ = transformers_config(path, ("clip",), flag="--hf-clip", what="CLIPModel")
        try:
            from transformers import AutoTokenizer

            model = CLIPModel.from_pretrained(p).eval()
            hf_tok = AutoTokenizer.from_pretrained(p)
        except Exception as exc:
            raise ExportError(f"--hf-clip {path}: could not load model or tokenizer: {exc}") from exc
        tok = set_fixed_length(hf_tok.backend_tokenizer, model.config.text_config.max_position_embeddings,
                               hf_tok.pad_token_id, hf_tok.pad_token)
        src, name = str(path), p.name
    ctx = model.config.text_config.max_position_embeddings
    img = model.config.vision_config.image_size
    info = dict(context_length=ctx, pad_token_id=tok.padding["pad_id"], image_size=img, mean=OPENAI_MEAN,
                std=OPENAI_STD, interpolation="bicubic", source=src, license="MIT", name=name)
    return model, tok, info


def _wrappers(model):
    import torch

    hf = model.__class__.__name__ == "CLIPModel"

    class ImageEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, pixel_values):
            if hf:
                out = self.model.get_image_features(pixel_values=pixel_values)
                return getattr(out, "pooler_output", out)
            return self.model.encode_image(pixel_values, normalize=False)

    class TextEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, input_ids):
            if hf:
                out = self.model.get_text_features(input_ids=input_ids)
                return getattr(out, "pooler_output", out)
            return self.model.encode_text(input_ids, normalize=False)

    return ImageEncoder().eval(), TextEncoder().eval()


def logit_scale_of(model) -> float:
    return float(model.logit_scale.detach().exp().item())


# ----------------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------------


def export_clip(model, tok, info: dict, out_dir: Path, model_id: str, weights: str, atol: float = 1e-4,
                seed: int = 0, write_manifest: bool = True, extra_config: dict | None = None) -> dict:
    """Exports both graphs + tokenizer.json into out_dir/model_id (atomically), checks parity, upserts the manifest
    entry and returns it. Raises ExportError on a parity failure (nothing is written then)."""
    import torch

    torch_threads(model)
    out_dir = Path(out_dir)
    img_enc, txt_enc = _wrappers(model)
    s = info["image_size"]
    rng = np.random.default_rng(seed)
    pixels = torch.from_numpy(rng.standard_normal((2, 3, s, s)).astype(np.float32))
    prompts = [p for ps in DEFAULT_PROMPTS.values() for p in ps]
    ids = torch.from_numpy(encode_ids(tok, prompts))
    with torch.no_grad():  # references first (tracing can leave transient state in HF modules)
        ref_img = img_enc(pixels).numpy()
        ref_txt = txt_enc(ids).numpy()
    parity: dict[str, float] = {}
    with atomic_dir(out_dir / model_id) as tmp:
        export_onnx(img_enc, (pixels,), tmp / "image_encoder.onnx", ["pixel_values"], ["image_embeds"],
                    {"pixel_values": {0: "batch"}, "image_embeds": {0: "batch"}})
        export_onnx(txt_enc, (ids,), tmp / "text_encoder.onnx", ["input_ids"], ["text_embeds"],
                    {"input_ids": {0: "batch"}, "text_embeds": {0: "batch"}})
        tok.save(str(tmp / "tokenizer.json"))
        parity["image_encoder"] = check_parity(
            "image_encoder", {"image_embeds": ref_img},
            run_onnx(tmp / "image_encoder.onnx", {"pixel_values": pixels.numpy()}), atol)
        parity["text_encoder"] = check_parity(
            "text_encoder", {"text_embeds": ref_txt},
            run_onnx(tmp / "text_encoder.onnx", {"input_ids": ids.numpy()}), atol)
        # the tokenizer as saved must give the ids the parity check used
        from tokenizers import Tokenizer

        if not np.array_equal(encode_ids(Tokenizer.from_file(str(tmp / "tokenizer.json")), prompts), ids.numpy()):
            raise ExportError("tokenizer.json round trip changed the token ids")
    final = out_dir / model_id
    files = [mf.file_record(out_dir, final / "image_encoder.onnx", "image_encoder"),
             mf.file_record(out_dir, final / "text_encoder.onnx", "text_encoder"),
             mf.file_record(out_dir, final / "tokenizer.json", "tokenizer")]
    ref = "open_clip PyTorch" if model.__class__.__name__ != "CLIPModel" else "transformers CLIPModel PyTorch"
    config = {
        "logit_scale": logit_scale_of(model),
        "context_length": int(info["context_length"]),
        "pad_token_id": int(info["pad_token_id"]),
        "tokenizer": "tokenizer.json",
        "default_prompts": DEFAULT_PROMPTS,
        "embed_dim": int(ref_img.shape[-1]),
        "embeddings_normalized": False,
        "parity": parity,
        **(extra_config or {}),
    }
    entry = {
        "id": model_id,
        "name": info["name"],
        "family": "clip",
        "task": "zero-shot-classification",
        "weights": weights,
        "license": info["license"],
        "source": info["source"],
        "variants": {"fp32": {"dtype": "fp32", "files": files,
                              "parity": mf.parity_record(max(parity.values()), f"{ref}, fp32, atol {atol:g}")}},
        "preprocessing": {"size": [s, s], "resize": "bicubic" if info["interpolation"] == "bicubic" else "bilinear",
                          "mean": [float(v) for v in info["mean"]], "std": [float(v) for v in info["std"]],
                          "layout": "NCHW"},
        "io": {"image_encoder": {"inputs": ["pixel_values"], "outputs": ["image_embeds"]},
               "text_encoder": {"inputs": ["input_ids"], "outputs": ["text_embeds"]}},
        "config": config,
        "card": {"summary": "CLIP image/text encoders for zero-shot labels (cosine similarity x logit_scale)."
                 + (" Random weights: a test fixture, its outputs mean nothing." if weights == "random-fixture" else ""),
                 "limitations": "Not for clinical use."},
    }
    if write_manifest:
        mf.upsert_entry(out_dir, entry)
    return entry


def run(args: argparse.Namespace) -> dict:
    if args.hf_clip and args.checkpoint:
        raise ExportError("use one of --hf-clip and --checkpoint")
    if args.random_init:
        if args.hf_clip is not None:
            model, tok, info = load_hf_clip("", random_size=args.size, seed=args.seed)
        elif args.model in (BIOMEDCLIP_HUB, "biomedclip"):
            model, tok, info = build_random_biomedclip(args.size, seed=args.seed)
        else:
            model, tok, info = build_random_open_clip(args.model, args.size, seed=args.seed)
        weights = "random-fixture"
    elif args.hf_clip is not None:
        if not args.hf_clip:
            raise ExportError("--hf-clip needs a folder (or --random-init for a random CLIPModel)")
        model, tok, info = load_hf_clip(args.hf_clip)
        weights = "pretrained"
    elif args.checkpoint:
        p = Path(args.checkpoint)
        if p.is_dir():
            if not (p / "open_clip_config.json").exists():
                raise ExportError(f"--checkpoint {p}: no open_clip_config.json (expected an open_clip folder)")
            model, tok, info = load_open_clip(f"local-dir:{p}", None)
        elif p.is_file():
            model, tok, info = load_open_clip(args.model, str(p))
        else:
            raise ExportError(f"--checkpoint {p}: no such file or folder")
        weights = "pretrained"
    else:
        model, tok, info = load_open_clip(args.model, args.pretrained)
        weights = "pretrained"
    entry = export_clip(model, tok, info, args.out_dir, args.model_id, weights, atol=args.atol, seed=args.seed)
    print(json.dumps({"id": entry["id"], "parity": entry["config"]["parity"],
                      "logit_scale": entry["config"]["logit_scale"]}))
    return entry


def register(subparsers) -> None:
    p = subparsers.add_parser("clip", help="export a CLIP pair (BiomedCLIP by default) to ONNX + tokenizer.json",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "biomedclip")
    p.add_argument("--model", default=BIOMEDCLIP_HUB,
                   help="open_clip model name or hf-hub: id (default BiomedCLIP); with --random-init: 'biomedclip' "
                        "or a built-in open_clip config such as ViT-B-32")
    p.add_argument("--pretrained", default=None, help="open_clip pretrained tag or weights file for --model")
    p.add_argument("--checkpoint", default=None, help="local open_clip folder (open_clip_config.json) or weights file")
    p.add_argument("--hf-clip", nargs="?", const="", default=None,
                   help="transformers CLIPModel folder (with --random-init: no folder, random CLIPModel)")
    p.set_defaults(func=run)
