"""The generator's models (`cxr-export train-generator`): its sizes, captions, the SD 1.x-family builders
(AutoencoderKL, CLIP text encoder, UNet2DConditionModel, tokenizer), the trained parts read back from a run folder
(RUN/vae, RUN/base) and the latents of the training images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError
from .gen_data import _seed, _write_json, to_pixels, train_images

MODEL_ID = "cxr-ldm-lcm"
NORMAL_CAPTIONS = ["a chest X-ray", "a normal chest X-ray", "a frontal chest radiograph", "a pediatric chest X-ray",
                   "chest X-ray, AP view"]
PNEUMONIA_CAPTION = "a chest X-ray showing pneumonia"
UNCOND_P = 0.1

GEN_SIZES: dict[str, dict[str, Any]] = {
    # what this CPU can train: 64 px, f=4 VAE (16x16x4 latents), 1.38M-parameter UNet, 32-wide text encoder (the
    # 49,408-token embedding is most of its 6.5 MB); two UNet graphs + the rest stay under 25 MB
    "small": dict(
        image_size=64,
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=64, layers_per_block=1,
                 block_out_channels=(32, 64, 64), down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=16, scaling_factor=0.18215),
        unet=dict(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 48, 64),
                  # cross-attention at 8x8 and 4x4 (and the mid block), not at 16x16: a third less compute
                  down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
                  up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
                  cross_attention_dim=32, attention_head_dim=4, norm_num_groups=16),
        text=dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32),
        tokenizer="clip", lcm_rank=16),
    # tests: seconds per stage
    "tiny": dict(
        image_size=16,
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=16, layers_per_block=1,
                 block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                 up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=4, scaling_factor=0.18215),
        unet=dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=4,
                  norm_num_groups=4),
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32),
        tokenizer="tiny", lcm_rank=4),
}


def runs_default() -> Path:
    return Path(__file__).resolve().parents[1] / "runs" / "gen"


def gen_tokenizer(size: str):
    """CLIP BPE tokenizer, 77 tokens padded with <|endoftext|>: OpenAI's vocab from ../shared ('small'), or
    sd.py's own small BPE ('tiny', tests)."""
    from .tokenizer_builders import clip_bpe_tokenizer, shared_clip_tokenizer_files
    from .sd import CONTEXT_LENGTH, tiny_bpe_vocab

    if GEN_SIZES[size]["tokenizer"] == "tiny":
        vocab, merges = tiny_bpe_vocab()
        return clip_bpe_tokenizer(vocab, merges, CONTEXT_LENGTH)
    vocab, merges = shared_clip_tokenizer_files()
    return clip_bpe_tokenizer(vocab, merges, CONTEXT_LENGTH)


def build_vae(size: str, seed: int):
    from diffusers import AutoencoderKL

    _seed(seed)
    return AutoencoderKL(**GEN_SIZES[size]["vae"])


def build_text(size: str, seed: int, tok):
    from transformers import CLIPTextConfig, CLIPTextModel

    _seed(seed + 1)
    eos, bos = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftext|>")
    return CLIPTextModel(CLIPTextConfig(vocab_size=tok.get_vocab_size(), bos_token_id=bos, eos_token_id=eos,
                                        pad_token_id=eos, attn_implementation="eager", **GEN_SIZES[size]["text"]))


def build_unet(size: str, seed: int):
    from diffusers import UNet2DConditionModel

    _seed(seed + 2)
    return UNet2DConditionModel(**GEN_SIZES[size]["unet"])


def text_states(tok, text_encoder, prompts: list[str]):
    import torch

    from .tokenizer_builders import encode_ids

    with torch.no_grad():
        return text_encoder(input_ids=torch.from_numpy(encode_ids(tok, prompts))).last_hidden_state


def ddpm_config() -> dict:
    from .sd import SD15_SCHEDULER

    return dict(SD15_SCHEDULER)


def load_vae(run_dir: Path):
    from diffusers import AutoencoderKL

    p = Path(run_dir) / "vae" / "model"
    if not (p / "config.json").exists():
        raise ExportError(f"{p}: no trained VAE; run `train-generator vae` first")
    vae = AutoencoderKL.from_pretrained(str(p))
    vae.eval().requires_grad_(False)
    return vae


def encode_latents(vae, x: np.ndarray, batch: int = 64):
    """Posterior (mean, std) of uint8 gray images, in unscaled latent units."""
    import torch

    means, stds = [], []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            post = vae.encode(to_pixels(x[i:i + batch])).latent_dist
            means.append(post.mean)
            stds.append(post.std)
    return torch.cat(means), torch.cat(stds)


def cached_latents(args, vae, labels: tuple[str, ...]):
    import torch

    spec = GEN_SIZES[args.size]
    x, labs = train_images(args, labels, spec["image_size"])
    vstamp = int((Path(args.run_dir) / "vae" / "model" / "config.json").stat().st_mtime)
    cache = Path(args.run_dir) / "cache" / f"lat-{'-'.join(labels)}-{len(x)}-{args.seed}-{vstamp}.pt"
    if cache.exists():
        d = torch.load(cache)
        return d["mean"], d["std"]
    mean, std = encode_latents(vae, x)
    torch.save({"mean": mean, "std": std}, cache)
    return mean, std


def write_base_folder(run_dir: Path, unet, vae, text_encoder, tok) -> Path:
    """RUN/base in the diffusers SD layout that sd.build_sd(pretrained=...) and `cxr-export lora` read."""
    base = Path(run_dir) / "base"
    tmp = Path(run_dir) / "base.tmp"
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    unet.save_pretrained(str(tmp / "unet"), safe_serialization=True)
    vae.save_pretrained(str(tmp / "vae"), safe_serialization=True)
    text_encoder.save_pretrained(str(tmp / "text_encoder"), safe_serialization=True)
    (tmp / "tokenizer").mkdir(parents=True)
    tok.save(str(tmp / "tokenizer" / "tokenizer.json"))  # converted from vocab.json + merges.txt (not a copy)
    _write_json(tmp / "scheduler" / "scheduler_config.json", {"_class_name": "DDPMScheduler", **ddpm_config()})
    _write_json(tmp / "model_index.json", {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers",
                "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"], "text_encoder": ["transformers",
                "CLIPTextModel"], "scheduler": ["diffusers", "DDPMScheduler"]})
    shutil.rmtree(base, ignore_errors=True)
    os.replace(tmp, base)
    return base


def load_base(run_dir: Path):
    """sd.build_sd(pretrained=RUN/base): dict(tokenizer, text_encoder, unet, vae, scheduler_config, info)."""
    from .sd import build_sd

    base = Path(run_dir) / "base"
    if not (base / "unet" / "config.json").exists():
        raise ExportError(f"{base}: no base model; run `train-generator unet` first")
    return build_sd("full", 0, base)
