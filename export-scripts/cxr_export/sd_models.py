"""Models of the `cxr-export sd` pipeline (sd.py): builds the Stable Diffusion 1.5 pipeline (pretrained weights checked
first, or a tiny random model of the same layout for fixtures) and the LCM scheduler configuration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .common import seed_all
from .errors import ExportError
from .sd_tokenizer import CONTEXT_LENGTH, sd_tokenizer


# Modules the published LCM-LoRA for SD 1.5 adapts (its adapter_config / safetensors keys).
LCM_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
               "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj"]
SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      trained_betas=None, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                      prediction_type="epsilon", timestep_spacing="leading")

SD_SIZES: dict[str, dict[str, Any]] = {
    "full": dict(  # runwayml/stable-diffusion-v1-5
        unet=dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                  block_out_channels=(320, 640, 1280, 1280),
                  down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                    "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                  cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2,
                 block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                 up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.18215),
        text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768),
        lcm_rank=64, image_size=512),
    "tiny": dict(
        unet=dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
                  norm_num_groups=4),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=32, layers_per_block=1,
                 block_out_channels=(8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=4, scaling_factor=0.18215),
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32),
        lcm_rank=4, image_size=32),
}


def _check_pretrained(path: Path) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ExportError(f"--pretrained {path}: no such folder")
    for sub, cls in (("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL"), ("text_encoder", None)):
        cfg = p / sub / "config.json"
        if not cfg.exists():
            raise ExportError(f"--pretrained {path}: missing {sub}/config.json (expected a diffusers SD folder)")
        data = json.loads(cfg.read_text())
        if cls and data.get("_class_name") != cls:
            raise ExportError(f"--pretrained {path}: {sub}/config.json is {data.get('_class_name')!r}, expected {cls}")
        if not cls and data.get("model_type") not in ("clip_text_model",):
            raise ExportError(f"--pretrained {path}: text_encoder is {data.get('model_type')!r}, "
                              "expected 'clip_text_model'")
    return p


def build_sd(size: str = "tiny", seed: int = 0, pretrained: Path | None = None, with_vae_encoder: bool = True):
    """dict(tokenizer, text_encoder, unet, vae, scheduler_config, info). Random weights come from `seed`, so
    `lora --random-init --seed S` and `sd --random-init --seed S` build the same base model."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if pretrained is not None:
        p = _check_pretrained(pretrained)
        try:
            unet = UNet2DConditionModel.from_pretrained(p, subfolder="unet")
            vae = AutoencoderKL.from_pretrained(p, subfolder="vae")
            text = CLIPTextModel.from_pretrained(p, subfolder="text_encoder", attn_implementation="eager")
        except Exception as exc:
            raise ExportError(f"--pretrained {p}: could not load the SD components: {exc}") from exc
        tok = sd_tokenizer(size, p)
        sched_path = p / "scheduler" / "scheduler_config.json"
        sched = json.loads(sched_path.read_text()) if sched_path.exists() else dict(SD15_SCHEDULER)
        source = str(p)
    else:
        spec = SD_SIZES[size]
        tok = sd_tokenizer(size)
        vocab_size = tok.get_vocab_size()
        eos = tok.token_to_id("<|endoftext|>")
        bos = tok.token_to_id("<|startoftext|>")
        seed_all(seed)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
                                            attn_implementation="eager", **spec["text"]))
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**spec["vae"])
        sched = dict(SD15_SCHEDULER)
        source = f"random-init ({size}) Stable Diffusion 1.5 architecture"
    for m in (unet, vae, text):
        m.eval()
        m.requires_grad_(False)
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    info = dict(source=source, size=size, latent_channels=int(unet.config.in_channels),
                latent_size=int(unet.config.sample_size), vae_scale_factor=int(vae_scale),
                image_size=int(unet.config.sample_size) * vae_scale, scaling_factor=float(vae.config.scaling_factor),
                context_length=CONTEXT_LENGTH, hidden_size=int(text.config.hidden_size),
                time_cond_proj_dim=unet.config.time_cond_proj_dim)
    return dict(tokenizer=tok, text_encoder=text, unet=unet, vae=vae, scheduler_config=sched, info=info)


def lcm_scheduler_config(base: dict) -> dict:
    """diffusers LCMScheduler config derived from the SD scheduler config (what LCM-LoRA pipelines do)."""
    from diffusers import LCMScheduler

    sched = LCMScheduler.from_config({k: v for k, v in base.items() if not k.startswith("_")})
    return json.loads(sched.to_json_string())
