"""cxr-clip: the project's own image-text model (LiT-style: a locked image tower the project trained, a trainable
projection head, optionally its last transformer block unlocked, and a CLIP text tower trained from scratch).

Image tower (`CxrClip.vision`): the transformers ViT of `public/models/pneumonia-vit` (rebuilt from its ONNX graph by
recover.py), preprocessing mean 0.5 / std 0.5 at 224 px (vit.py). Its first `num_layers - unlocked_blocks` blocks
are locked (Zhai et al. 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning", arXiv:2111.07991); the rest,
the final layernorm and a projection head are trained. `forward_locked` / `forward_unlocked` split the tower there so
that training can cache the locked part's output once and touch only the small trainable part afterwards.

Text tower (`CxrClip.text`): transformers `CLIPTextModelWithProjection` (causal mask, pooled at the first EOS token,
`text_embeds` = projection of that token), with the OpenAI CLIP BPE tokenizer of ../shared/weights/clip-tokenizer.
Reason: Stable Diffusion 1.x conditions its UNet on a `CLIPTextModel`'s last_hidden_state with this tokenizer at 77
tokens, so this tower can also be the generator's text encoder. With the causal mask and EOS pooling the padding
length does not change the embedding, so training pads short and the export pads to 77.

API (shared with the PEFT fine-tuning code; keep the names):
  build_cxr_clip(config) -> CxrClip      random weights from a config dict (DEFAULT_CONFIG keys)
  init_vision_from_onnx(model, path)     copy the pneumonia-vit weights into model.vision.vit (parity-checked)
  save_cxr_clip(model, dir) / load_cxr_clip(dir) -> CxrClip   config.json + model.safetensors
  tokenize(texts, context_length) -> int64 [b, context_length]
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np

from .errors import ExportError

DEFAULT_CONFIG: dict = {
    # pneumonia-vit's architecture (vit.DEFAULT_ARCH); the head pools [CLS, mean of patch tokens] after layernorm
    "vision": dict(image_size=224, patch_size=32, hidden_size=192, num_hidden_layers=6, num_attention_heads=3,
                   intermediate_size=768),
    "unlocked_blocks": 0,
    "head_hidden": 512,
    "embed_dim": 256,
    "text": dict(vocab_size=49408, hidden_size=128, intermediate_size=512, num_hidden_layers=4,
                 num_attention_heads=4, max_position_embeddings=77),
    # SigLIP init (Zhai et al. 2023, arXiv:2303.15343 sec. 3): t' = log 10; b = -10 there offsets one positive among
    # thousands of negatives per row. With label-derived positives about a third of a row is positive here, so b
    # starts at log(1/3 / (2/3)) ~ -1 (the prior log-odds the bias is meant to start from).
    "logit_scale_init": math.log(10.0),
    "logit_bias_init": -1.0,
    "mean": [0.5, 0.5, 0.5],
    "std": [0.5, 0.5, 0.5],
}
BOS_ID, EOS_ID = 49406, 49407  # <|startoftext|>, <|endoftext|> (also the pad token, as in SD 1.x)


def _torch():
    import torch

    return torch


def _module_classes():
    """Classes built lazily so that importing this module does not import torch."""
    torch = _torch()
    nn = torch.nn

    class CxrClipVision(nn.Module):
        """ViTModel (no pooler) + [CLS, mean patch] pooling + MLP head. pixel_values float32 [b,3,S,S] -> [b,D]."""

        def __init__(self, cfg: dict):
            super().__init__()
            from transformers import ViTModel

            from .vit import vit_config

            vc = vit_config(**cfg["vision"])
            vc._attn_implementation = "eager"  # exports and matches the ONNX graph exactly
            self.vit = ViTModel(vc, add_pooling_layer=False)
            h = vc.hidden_size
            self.n_locked = vc.num_hidden_layers - int(cfg["unlocked_blocks"])
            if not 0 <= self.n_locked <= vc.num_hidden_layers:
                raise ExportError(f"unlocked_blocks must be in [0, {vc.num_hidden_layers}]")
            self.head = nn.Sequential(nn.LayerNorm(2 * h), nn.Linear(2 * h, cfg["head_hidden"]), nn.GELU(),
                                      nn.Linear(cfg["head_hidden"], cfg["embed_dim"]))

        def forward_locked(self, pixel_values):
            """[b,3,S,S] -> hidden states entering the first unlocked block [b,T,H] (T = patches + 1)."""
            x = self.vit.embeddings(pixel_values)
            for layer in self.vit.layers[: self.n_locked]:
                x = layer(x, None)
            return x

        def forward_unlocked(self, hidden):
            """[b,T,H] from forward_locked -> unnormalized image embedding [b,D]."""
            x = hidden
            for layer in self.vit.layers[self.n_locked:]:
                x = layer(x, None)
            return self.head(self.pool(x))

        def pool(self, hidden):
            """[b,T,H] last-layer hidden states -> [b,2H]: final layernorm, then [CLS, mean of patch tokens]."""
            x = self.vit.layernorm(hidden)
            return torch.cat([x[:, 0], x[:, 1:].mean(1)], dim=-1)

        def forward(self, pixel_values):
            return self.forward_unlocked(self.forward_locked(pixel_values))

        def lock(self) -> None:
            """requires_grad False for the locked part (embeddings + first n_locked blocks; with every block locked the
            final layernorm as well), True for the rest."""
            for p in self.parameters():
                p.requires_grad_(True)
            for p in self.vit.embeddings.parameters():
                p.requires_grad_(False)
            for layer in self.vit.layers[: self.n_locked]:
                for p in layer.parameters():
                    p.requires_grad_(False)
            if self.n_locked == len(self.vit.layers):  # fully locked (LiT proper): the final layernorm too, so
                for p in self.vit.layernorm.parameters():  # training can cache the pooled features
                    p.requires_grad_(False)

    class CxrClip(nn.Module):
        """The image-text pair. encode_image(pixel_values float32 [b,3,224,224]) -> [b,D] and
        encode_text(input_ids int64 [b,L]) -> [b,D], both unnormalized (the app L2-normalizes them and multiplies
        the cosine by exp(logit_scale)). logit_bias is SigLIP's bias (training only; it cancels in a softmax)."""

        def __init__(self, cfg: dict):
            super().__init__()
            from transformers import CLIPTextConfig, CLIPTextModelWithProjection

            self.config = copy.deepcopy(cfg)
            self.vision = CxrClipVision(cfg)
            tc = CLIPTextConfig(**cfg["text"], projection_dim=cfg["embed_dim"], bos_token_id=BOS_ID,
                                eos_token_id=EOS_ID, pad_token_id=EOS_ID, hidden_act="quick_gelu")
            tc._attn_implementation = "eager"
            self.text = CLIPTextModelWithProjection(tc)
            self.logit_scale = nn.Parameter(torch.tensor(float(cfg["logit_scale_init"])))
            self.logit_bias = nn.Parameter(torch.tensor(float(cfg["logit_bias_init"])))

        def encode_image(self, pixel_values, normalize: bool = False):
            x = self.vision(pixel_values)
            return torch.nn.functional.normalize(x, dim=-1) if normalize else x

        def encode_text(self, input_ids, normalize: bool = False):
            x = self.text(input_ids=input_ids).text_embeds
            return torch.nn.functional.normalize(x, dim=-1) if normalize else x

        def forward(self, pixel_values, input_ids):
            """(image_embeds [b,D], text_embeds [c,D]) unnormalized."""
            return self.encode_image(pixel_values), self.encode_text(input_ids)

    return CxrClipVision, CxrClip


def __getattr__(name):  # CxrClip / CxrClipVision as module attributes without importing torch at import time
    if name in ("CxrClip", "CxrClipVision"):
        vis, clip = _module_classes()
        globals().update(CxrClipVision=vis, CxrClip=clip)
        return globals()[name]
    raise AttributeError(name)


def merged_config(config: dict | None = None) -> dict:
    """DEFAULT_CONFIG updated by config (nested dicts 'vision' and 'text' are merged key by key)."""
    cfg = copy.deepcopy(DEFAULT_CONFIG)
    for k, v in (config or {}).items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k].update(v)
        else:
            cfg[k] = v
    return cfg


def build_cxr_clip(config: dict | None = None, seed: int = 0):
    """A CxrClip with random weights (seeded) from DEFAULT_CONFIG updated by config; eval mode."""
    torch = _torch()
    torch.manual_seed(seed)
    _, clip_cls = _module_classes()
    return clip_cls(merged_config(config)).eval()


def init_vision_from_onnx(model, onnx_path, atol: float = 1e-4) -> float:
    """Copies the ViT of an exported pneumonia-vit graph (recover.checked_vit_from_onnx: rebuilt and checked against
    ONNX Runtime within atol) into model.vision.vit. Returns the recovery's max abs diff. Raises ExportError when the
    architectures differ."""
    from .recover import checked_vit_from_onnx

    clf, diff = checked_vit_from_onnx(onnx_path, arch=model.config["vision"])
    missing, unexpected = model.vision.vit.load_state_dict(clf.vit.state_dict(), strict=False)
    if missing or unexpected:
        raise ExportError(f"{onnx_path}: ViT weights do not fit cxr-clip's image tower (missing {missing[:3]}, "
                          f"unexpected {unexpected[:3]})")
    return diff


def save_cxr_clip(model, out_dir) -> Path:
    """out_dir/config.json (the model config) + out_dir/model.safetensors (all parameters, fp32)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(model.config, indent=1) + "\n")
    sd = {k: v.detach().contiguous().float().cpu() for k, v in model.state_dict().items()}
    save_file(sd, str(out / "model.safetensors"))
    return out


def load_cxr_clip(src_dir):
    """The CxrClip saved by save_cxr_clip in src_dir, eval mode. Raises ExportError naming a missing file or a
    parameter that does not fit the config."""
    from safetensors.torch import load_file

    d = Path(src_dir)
    for f in ("config.json", "model.safetensors"):
        if not (d / f).is_file():
            raise ExportError(f"{d}: no {f} (a cxr-clip folder written by save_cxr_clip / train-clip)")
    model = build_cxr_clip(json.loads((d / "config.json").read_text()))
    try:
        model.load_state_dict(load_file(str(d / "model.safetensors")), strict=True)
    except RuntimeError as exc:
        raise ExportError(f"{d}/model.safetensors does not fit its config.json: {exc}") from exc
    return model.eval()


_TOKENIZERS: dict[int, object] = {}


def tokenizer(context_length: int = 77):
    """The CLIP BPE `tokenizers.Tokenizer` (SD 1.x's: <|startoftext|> text <|endoftext|>, padded with
    <|endoftext|>, truncated) at a fixed context_length, from ../shared/weights/clip-tokenizer."""
    if context_length not in _TOKENIZERS:
        from .tokenizer_builders import clip_bpe_tokenizer, shared_clip_tokenizer_files

        vocab, merges = shared_clip_tokenizer_files()
        _TOKENIZERS[context_length] = clip_bpe_tokenizer(vocab, merges, context_length)
    return _TOKENIZERS[context_length]


def tokenize(texts: list[str], context_length: int = 77) -> np.ndarray:
    """int64 [len(texts), context_length] CLIP BPE ids. A text longer than context_length - 2 tokens is truncated
    (its EOS is kept, as the CLIP tokenizer does)."""
    from .tokenizer_builders import encode_ids

    ids = encode_ids(tokenizer(context_length), list(texts))
    # HF truncation drops the EOS with the tail; CLIP keeps it as the last token (the pooled position)
    long = ~(ids == EOS_ID).any(1)
    ids[long, -1] = EOS_ID
    return ids


def restrict_vocabulary(model, known_ids) -> int:
    """Zeroes the token-embedding rows of every id not in known_ids (the tokens training ever fed the text tower):
    those rows were never trained, so a prompt word the model cannot know becomes a blank (its position embedding
    only) instead of a random vector, and the export stores only the known rows (clip_export.CompactTokenEmbedding).
    Records the ids in model.config['known_token_ids']; returns how many rows were zeroed."""
    torch = _torch()
    emb = model.text.text_model.embeddings.token_embedding.weight
    keep = torch.zeros(emb.shape[0], dtype=torch.bool)
    keep[torch.as_tensor(sorted(set(int(i) for i in known_ids)), dtype=torch.long)] = True
    with torch.no_grad():
        emb[~keep] = 0.0
    model.config["known_token_ids"] = sorted(int(i) for i in torch.nonzero(keep).flatten().tolist())
    return int((~keep).sum())
