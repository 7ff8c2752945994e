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



# Shared helpers and tokenizer builders live in common.py and tokenizer_builders.py; re-exported here for old imports.
from .common import (add_common_args, atomic_dir, check_parity, export_onnx, models_dir_default,  # noqa: E402,F401
                     run_onnx, seed_all, torch_threads, write_json)
from .tokenizer_builders import (FIXTURE_WORDS, clip_bpe_tokenizer, encode_ids, set_fixed_length,  # noqa: E402,F401
                                 shared_clip_tokenizer_files, wordpiece_tokenizer, wordpiece_vocab)


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
