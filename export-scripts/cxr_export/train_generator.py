"""`cxr-export train-generator STAGE`: the project's own small latent diffusion model of chest X-rays, trained on the
Kermany TRAIN split only (test images are used by `eval` as the reference set, never for training), with the SD 1.x
architecture family and file layout so that `cxr-export lora` and `cxr-export sd` treat it like SD 1.5.

Stages (each resumable from RUN/<stage>/ckpt.pt; each run stops at --max-steps or --time-budget-min, whichever
comes first, and writes its outputs; running the stage again continues from the checkpoint):
  vae        diffusers AutoencoderKL (4 latent channels, 3 blocks = downsampling x4: 64 px -> 16x16 latents) on all
             train images; L1 reconstruction + KL (weight --kl-weight, per pixel); no LPIPS / GAN term (their
             weights cannot be had offline). Writes RUN/vae/model (scaling_factor = 1 / std of the latents, as
             the SD authors chose 0.18215).
  vae-decoder  fine-tunes the decoder only (encoder frozen: the latent space stays the same, like Stability's
             sd-vae-ft-mse), L1 + image-gradient L1; can run while `unet` trains; `export` uses it.
  unet       UNet2DConditionModel (cross-attention on a CLIP text encoder of the SD 1.x architecture, hidden 32,
             FROZEN at its seeded random init; tokenizer: OpenAI CLIP BPE from ../shared, converted to
             tokenizer.json) trained with the epsilon objective on the NORMAL train images, captions from
             NORMAL_CAPTIONS, 10% empty captions (for classifier-free guidance), EMA of the weights.
             Writes RUN/base: a diffusers SD folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/).
  lcm        latent consistency distillation of RUN/base as an LCM-LoRA, the recipe of diffusers'
             examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py: DDIM solver over 50 timesteps
             (skip k = 20), teacher with CFG w ~ U[w_min, w_max], target = the student itself (no EMA target),
             c_skip/c_out boundary scalings (timestep_scaling 10), L2 loss. Data: latents of all train images.
             Writes RUN/lcm/lora/pytorch_lora_weights.safetensors (the lcm-lora-sdv1-5 layout).
  lora-data  RUN/lora-data/metadata.jsonl: a seeded subset of PNEUMONIA train images (absolute paths, nothing
             copied) captioned "a chest X-ray showing pneumonia", for
             `cxr-export lora --pretrained RUN/base --data RUN/lora-data --out RUN/lora`.
  export     `cxr-export sd` (sd.prepare + sd.export_sd) of RUN/base + RUN/lcm/lora (+ RUN/lora) into
             --out-dir/<id> (public/models/cxr-ldm-lcm), then the manifest entry says weights "trained".
  eval       the project's classifier (public/models/pneumonia-vit) over generated images (LCM 2/4/8 steps from
             the exported ONNX graphs, 50-step DDIM of the undistilled PyTorch UNet): fraction called
             PNEUMONIA and Frechet distance on its penultimate embedding against real Kermany test images (floor:
             real train vs real test); the LoRA's loss curve; a grid image. Writes RUN/eval/metrics.json,
             updates the manifest card, writes --grid.

All stages: fixed seeds, torch.set_num_threads(--threads, default 1), os.nice(--nice, default 10).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from .common import load_ckpt, save_ckpt
from .errors import ExportError

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


# ----------------------------------------------------------------------------------------------------------------
# Plumbing: threads, seeds, checkpoints, data
# ----------------------------------------------------------------------------------------------------------------


def _setup(args) -> None:
    import torch

    if getattr(args, "nice", 0):
        try:
            os.nice(int(args.nice))
        except OSError:
            pass
    torch.set_num_threads(max(1, int(getattr(args, "threads", 1) or 1)))


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _append_log(path: Path, rows: list[dict]) -> None:
    if rows:
        with open(path, "a") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def list_split(root: Path, split: str, labels: tuple[str, ...] = ("NORMAL", "PNEUMONIA")) -> list[tuple[Path, str]]:
    """[(path, label)] of root/<split>/<label>/* (sorted), only the given labels."""
    from .data import IMAGE_EXTS

    out = []
    for label in labels:
        d = Path(root) / split / label
        if not d.is_dir():
            raise ExportError(f"--data {root}: no folder {split}/{label}")
        out += [(p, label) for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_EXTS]
    if not out:
        raise ExportError(f"--data {root}: no images in {split}/{labels}")
    return out


def load_gray(paths: list[Path], size: int) -> np.ndarray:
    """uint8 [N,size,size]: PIL decode -> 8-bit gray ('L') -> bilinear resize (PIL antialiases when shrinking).
    Same pixels as lora.load_images (RGB of a gray JPEG has three equal channels) for square inputs."""
    from PIL import Image

    out = np.empty((len(paths), size, size), np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            out[i] = np.asarray(im, np.uint8)[..., 0]
    return out


def to_pixels(gray_u8: np.ndarray):
    """uint8 [N,H,W] -> float32 torch [N,3,H,W] in [-1, 1] (the SD VAE's input range, gray in all channels)."""
    import torch

    x = torch.from_numpy(gray_u8.astype(np.float32) / 127.5 - 1.0)
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def train_images(args, labels: tuple[str, ...], size: int) -> tuple[np.ndarray, list[str]]:
    """Train-split images of the given labels at `size` px, cached in RUN/cache (uint8)."""
    rows = list_split(args.data, "train", labels)
    if args.max_images:
        rng = np.random.default_rng(args.seed)
        rows = [rows[i] for i in sorted(rng.permutation(len(rows))[: args.max_images])]
    key = f"train-{'-'.join(labels)}-{size}-{len(rows)}-{args.seed}"
    cache = Path(args.run_dir) / "cache" / f"{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["x"], [str(s) for s in z["labels"]]
    x = load_gray([p for p, _ in rows], size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, labels=np.array([lab for _, lab in rows]))
    return x, [lab for _, lab in rows]


class Budget:
    def __init__(self, minutes: float | None, max_steps: int, start_step: int):
        self.t0 = time.time()
        self.limit = minutes * 60 if minutes else math.inf
        self.max_steps = max_steps
        self.step = start_step

    def more(self) -> bool:
        return self.step < self.max_steps and time.time() - self.t0 < self.limit

    def elapsed(self) -> float:
        return time.time() - self.t0


# ----------------------------------------------------------------------------------------------------------------
# Model builders
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# Stage: vae
# ----------------------------------------------------------------------------------------------------------------


def stage_vae(args) -> dict:
    """Trains the AutoencoderKL; returns dict(step, recon_l1_init, recon_l1, scaling_factor, wall_s)."""
    import torch

    _setup(args)
    spec = GEN_SIZES[args.size]
    sdir = Path(args.run_dir) / "vae"
    sdir.mkdir(parents=True, exist_ok=True)
    x, _ = train_images(args, ("NORMAL", "PNEUMONIA"), spec["image_size"])
    vae = build_vae(args.size, args.seed)
    opt = torch.optim.AdamW(vae.parameters(), lr=args.lr or 5e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    n_eval = min(64, len(x))
    eval_x = to_pixels(x[np.random.default_rng(args.seed + 99).permutation(len(x))[:n_eval]])

    def recon_l1() -> float:
        vae.eval()
        with torch.no_grad():
            r = vae.decode(vae.encode(eval_x).latent_dist.mode()).sample
        vae.train()
        return float((r - eval_x).abs().mean())

    ck = load_ckpt(sdir / "ckpt.pt")
    if ck:
        vae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["gen"])
        step, init_l1, wall = ck["step"], ck["recon_l1_init"], ck["wall_s"]
    else:
        step, init_l1, wall = 0, recon_l1(), 0.0
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 16
    pix_per_sample = 3 * spec["image_size"] ** 2
    log, last_save = [], time.time()
    vae.train()
    while budget.more():
        idx = torch.randint(0, len(x), (bs,), generator=g).numpy()
        px = to_pixels(x[idx])
        post = vae.encode(px).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        l1 = (rec - px).abs().mean()
        kl = post.kl().mean() / pix_per_sample
        loss = l1 + args.kl_weight * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        budget.step = step
        log.append({"step": step, "loss": float(loss.detach()), "l1": float(l1.detach()), "kl": float(kl.detach())})
        if args.log_every and step % args.log_every == 0:
            print(f"vae step {step} l1 {np.mean([r['l1'] for r in log[-args.log_every:]]):.4f} "
                  f"{budget.elapsed():.0f}s", flush=True)
        if time.time() - last_save > 300:
            _append_log(sdir / "train_log.jsonl", log)
            log = []
            save_ckpt(sdir / "ckpt.pt", dict(model=vae.state_dict(), opt=opt.state_dict(), gen=g.get_state(),
                                             step=step, recon_l1_init=init_l1, wall_s=wall + budget.elapsed()))
            last_save = time.time()
    _append_log(sdir / "train_log.jsonl", log)
    wall += budget.elapsed()
    save_ckpt(sdir / "ckpt.pt", dict(model=vae.state_dict(), opt=opt.state_dict(), gen=g.get_state(), step=step,
                                     recon_l1_init=init_l1, wall_s=wall))
    final_l1 = recon_l1()
    # SD's scaling_factor: 1 / std of the (sampled) latents of training images, so the diffusion model sees ~unit
    # variance latents (Rombach et al. 2022, sec. G; 0.18215 for SD's own VAE).
    vae.eval()
    with torch.no_grad():
        zs = torch.cat([vae.encode(to_pixels(x[i:i + 64])).latent_dist.sample(generator=g)
                        for i in range(0, min(len(x), 512), 64)])
    sf = float(1.0 / zs.flatten().std())
    vae.register_to_config(scaling_factor=sf)
    vae.save_pretrained(str(sdir / "model"), safe_serialization=True)
    summary = dict(step=step, recon_l1_init=init_l1, recon_l1=final_l1, scaling_factor=sf, wall_s=round(wall, 1),
                   images=int(len(x)), image_size=spec["image_size"], kl_weight=args.kl_weight, batch_size=bs,
                   params=sum(p.numel() for p in vae.parameters()))
    _write_json(sdir / "summary.json", summary)
    print(json.dumps(summary), flush=True)
    return summary


def stage_vae_decoder(args) -> dict:
    """Fine-tunes only the VAE decoder (+ post_quant_conv) of RUN/vae/model with the encoder frozen, so the latent
    space the UNet learned stays exactly the same (what Stability did for the sd-vae-ft-mse decoder). Loss: L1 +
    L1 of the image gradients (a cheap sharpness term standing in for LPIPS). Writes RUN/vae-decoder/model;
    `export` puts it into RUN/base/vae."""
    import torch

    _setup(args)
    spec = GEN_SIZES[args.size]
    sdir = Path(args.run_dir) / "vae-decoder"
    sdir.mkdir(parents=True, exist_ok=True)
    x, _ = train_images(args, ("NORMAL", "PNEUMONIA"), spec["image_size"])
    vae = load_vae(args.run_dir)
    enc_state = {k: v.clone() for k, v in vae.state_dict().items() if k.startswith(("encoder.", "quant_conv."))}
    train_params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    for p_ in train_params:
        p_.requires_grad_(True)
    opt = torch.optim.AdamW(train_params, lr=args.lr or 5e-4, weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed + 5)
    eval_x = to_pixels(x[np.random.default_rng(args.seed + 99).permutation(len(x))[:min(64, len(x))]])

    def recon_l1() -> float:
        with torch.no_grad():
            return float((vae.decode(vae.encode(eval_x).latent_dist.mode()).sample - eval_x).abs().mean())

    ck = load_ckpt(sdir / "ckpt.pt")
    if ck:
        vae.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["gen"])
        step, init_l1, wall = ck["step"], ck["recon_l1_init"], ck["wall_s"]
    else:
        step, init_l1, wall = 0, recon_l1(), 0.0
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 16
    log, last_save = [], time.time()

    def grads(im):
        return im[..., 1:, :] - im[..., :-1, :], im[..., :, 1:] - im[..., :, :-1]

    def ckpt():
        return dict(model=vae.state_dict(), opt=opt.state_dict(), gen=g.get_state(), step=step,
                    recon_l1_init=init_l1, wall_s=wall + budget.elapsed())

    vae.decoder.train()
    while budget.more():
        idx = torch.randint(0, len(x), (bs,), generator=g).numpy()
        px = to_pixels(x[idx])
        with torch.no_grad():
            post = vae.encode(px).latent_dist
            z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
        rec = vae.decode(z).sample
        l1 = (rec - px).abs().mean()
        (ry, rx), (py, px_) = grads(rec), grads(px)
        lg = (ry - py).abs().mean() + (rx - px_).abs().mean()
        loss = l1 + lg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(train_params, 1.0)
        opt.step()
        step += 1
        budget.step = step
        log.append({"step": step, "loss": float(loss.detach()), "l1": float(l1.detach())})
        if args.log_every and step % args.log_every == 0:
            print(f"vae-decoder step {step} l1 {np.mean([r['l1'] for r in log[-args.log_every:]]):.4f} "
                  f"{budget.elapsed():.0f}s", flush=True)
        if time.time() - last_save > 300:
            _append_log(sdir / "train_log.jsonl", log)
            log = []
            save_ckpt(sdir / "ckpt.pt", ckpt())
            last_save = time.time()
    _append_log(sdir / "train_log.jsonl", log)
    save_ckpt(sdir / "ckpt.pt", ckpt())
    wall += budget.elapsed()
    vae.eval()
    same = all(torch.equal(v, vae.state_dict()[k]) for k, v in enc_state.items())
    if not same:
        raise ExportError("vae-decoder: the encoder changed (it must stay frozen)")
    final_l1 = recon_l1()
    vae.save_pretrained(str(sdir / "model"), safe_serialization=True)
    summary = dict(step=step, recon_l1_init=init_l1, recon_l1=final_l1, wall_s=round(wall, 1), batch_size=bs,
                   loss="L1 + L1 of image gradients", encoder="frozen (latent space unchanged)")
    _write_json(sdir / "summary.json", summary)
    print(json.dumps(summary), flush=True)
    return summary


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


# ----------------------------------------------------------------------------------------------------------------
# Stage: unet
# ----------------------------------------------------------------------------------------------------------------


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


def stage_unet(args) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler

    _setup(args)
    sdir = Path(args.run_dir) / "unet"
    sdir.mkdir(parents=True, exist_ok=True)
    vae = load_vae(args.run_dir)
    sf = float(vae.config.scaling_factor)
    mean, std = cached_latents(args, vae, ("NORMAL",))
    tok = gen_tokenizer(args.size)
    text_encoder = build_text(args.size, args.seed, tok).eval().requires_grad_(False)
    prompts = NORMAL_CAPTIONS + [""]
    states = text_states(tok, text_encoder, prompts)
    unet = build_unet(args.size, args.seed)
    ema = copy.deepcopy(unet).requires_grad_(False)
    lr = args.lr or 5e-4
    opt = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    sched = DDPMScheduler.from_config(ddpm_config())
    g = torch.Generator().manual_seed(args.seed)
    ck = load_ckpt(sdir / "ckpt.pt")
    step, wall = 0, 0.0
    if ck:
        unet.load_state_dict(ck["model"])
        ema.load_state_dict(ck["ema"])
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["gen"])
        step, wall = ck["step"], ck["wall_s"]
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 32
    warmup = 100
    log, last_save = [], time.time()

    def ckpt():
        return dict(model=unet.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), gen=g.get_state(),
                    step=step, wall_s=wall + budget.elapsed())

    unet.train()
    while budget.more():
        for pg in opt.param_groups:
            pg["lr"] = lr * min(1.0, (step + 1) / warmup)
        idx = torch.randint(0, len(mean), (bs,), generator=g)
        lat = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * sf
        noise = torch.randn(lat.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (bs,), generator=g)
        cap = torch.randint(0, len(NORMAL_CAPTIONS), (bs,), generator=g)
        cap = torch.where(torch.rand(bs, generator=g) < UNCOND_P, len(NORMAL_CAPTIONS), cap)
        pred = unet(sched.add_noise(lat, noise, t), t, states[cap]).sample
        loss = F.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        step += 1
        budget.step = step
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), unet.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        log.append({"step": step, "loss": float(loss.detach())})
        if args.log_every and step % args.log_every == 0:
            print(f"unet step {step} loss {np.mean([r['loss'] for r in log[-args.log_every:]]):.4f} "
                  f"{budget.elapsed():.0f}s", flush=True)
        if time.time() - last_save > 300:
            _append_log(sdir / "train_log.jsonl", log)
            log = []
            save_ckpt(sdir / "ckpt.pt", ckpt())
            last_save = time.time()
    _append_log(sdir / "train_log.jsonl", log)
    save_ckpt(sdir / "ckpt.pt", ckpt())
    wall += budget.elapsed()
    write_base_folder(args.run_dir, ema, vae, text_encoder, tok)
    losses = [json.loads(line)["loss"] for line in (sdir / "train_log.jsonl").read_text().splitlines()]
    k = min(50, len(losses))
    summary = dict(step=step, wall_s=round(wall, 1), start_loss=float(np.mean(losses[:k])),
                   end_loss=float(np.mean(losses[-k:])), images=int(len(mean)), batch_size=bs, lr=lr, ema=args.ema,
                   params=sum(p.numel() for p in unet.parameters()), objective="epsilon (DDPM, SD 1.5 schedule)",
                   text_encoder="CLIPTextModel, frozen at seeded random init", captions=NORMAL_CAPTIONS,
                   uncond_p=UNCOND_P)
    _write_json(sdir / "summary.json", summary)
    print(json.dumps(summary), flush=True)
    return summary


def load_base(run_dir: Path):
    """sd.build_sd(pretrained=RUN/base): dict(tokenizer, text_encoder, unet, vae, scheduler_config, info)."""
    from .sd import build_sd

    base = Path(run_dir) / "base"
    if not (base / "unet" / "config.json").exists():
        raise ExportError(f"{base}: no base model; run `train-generator unet` first")
    return build_sd("full", 0, base)


# ----------------------------------------------------------------------------------------------------------------
# Stage: lcm (latent consistency distillation, LoRA variant)
# ----------------------------------------------------------------------------------------------------------------


def scalings_for_boundary_conditions(timestep, sigma_data: float = 0.5, timestep_scaling: float = 10.0):
    """c_skip, c_out of the consistency model parameterisation (train_lcm_distill_*.py)."""
    scaled = timestep * timestep_scaling
    c_skip = sigma_data**2 / (scaled**2 + sigma_data**2)
    c_out = scaled / (scaled**2 + sigma_data**2) ** 0.5
    return c_skip, c_out


class DDIMSolver:
    """train_lcm_distill_*.py's DDIMSolver: `ddim_timesteps` evenly spaced skipping points of the 1000-step
    schedule and the deterministic DDIM step to the previous one."""

    def __init__(self, alpha_cumprods: np.ndarray, timesteps: int = 1000, ddim_timesteps: int = 50):
        import torch

        step_ratio = timesteps // ddim_timesteps
        self.ddim_timesteps = (np.arange(1, ddim_timesteps + 1) * step_ratio).round().astype(np.int64) - 1
        self.ddim_alpha_cumprods = alpha_cumprods[self.ddim_timesteps]
        self.ddim_alpha_cumprods_prev = np.asarray([alpha_cumprods[0]] +
                                                   alpha_cumprods[self.ddim_timesteps[:-1]].tolist())
        self.ddim_timesteps = torch.from_numpy(self.ddim_timesteps).long()
        self.ddim_alpha_cumprods_prev = torch.from_numpy(self.ddim_alpha_cumprods_prev).float()

    def ddim_step(self, pred_x0, pred_noise, timestep_index):
        a_prev = self.ddim_alpha_cumprods_prev[timestep_index].view(-1, 1, 1, 1)
        return a_prev.sqrt() * pred_x0 + (1.0 - a_prev).sqrt() * pred_noise


def save_lcm_lora(student, out: Path) -> Path:
    """pytorch_lora_weights.safetensors with peft-format keys under `unet.` (what diffusers' SD LoRA loader and
    `cxr-export sd --lcm-lora` read back exactly; diffusers' convert_state_dict_to_diffusers would rename only the
    attention keys to lora.down/up, and those are then dropped on load)."""
    from diffusers.loaders.lora_pipeline import StableDiffusionLoraLoaderMixin
    from peft.utils import get_peft_model_state_dict

    out.mkdir(parents=True, exist_ok=True)
    StableDiffusionLoraLoaderMixin.save_lora_weights(str(out), unet_lora_layers=get_peft_model_state_dict(student))
    return out / "pytorch_lora_weights.safetensors"


def stage_lcm(args) -> dict:
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig

    from .sd import LCM_TARGETS

    _setup(args)
    sdir = Path(args.run_dir) / "lcm"
    sdir.mkdir(parents=True, exist_ok=True)
    parts = load_base(args.run_dir)
    teacher, vae, tok, text_encoder = parts["unet"], parts["vae"], parts["tokenizer"], parts["text_encoder"]
    sf = float(vae.config.scaling_factor)
    mean, std = cached_latents(args, vae, ("NORMAL", "PNEUMONIA"))
    prompts = NORMAL_CAPTIONS + [PNEUMONIA_CAPTION]
    cond_all = text_states(tok, text_encoder, prompts)
    uncond = text_states(tok, text_encoder, [""])
    sched = DDPMScheduler.from_config(ddpm_config())
    acp = sched.alphas_cumprod.float()
    alpha_s, sigma_s = acp.sqrt(), (1 - acp).sqrt()
    solver = DDIMSolver(acp.numpy(), sched.config.num_train_timesteps, args.num_ddim_timesteps)
    topk = sched.config.num_train_timesteps // args.num_ddim_timesteps
    rank = args.lcm_rank or GEN_SIZES[args.size]["lcm_rank"]
    student = copy.deepcopy(teacher)
    student.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=LCM_TARGETS, init_lora_weights="gaussian"))
    params = [p for p in student.parameters() if p.requires_grad]
    lr = args.lr or 1e-4
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    g = torch.Generator().manual_seed(args.seed)
    ck = load_ckpt(sdir / "ckpt.pt")
    step, wall = 0, 0.0
    if ck:
        student.load_state_dict(ck["model"], strict=False)
        opt.load_state_dict(ck["opt"])
        g.set_state(ck["gen"])
        step, wall = ck["step"], ck["wall_s"]
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 32
    log, last_save = [], time.time()

    def x0_of(eps, t, x):
        return (x - sigma_s[t].view(-1, 1, 1, 1) * eps) / alpha_s[t].view(-1, 1, 1, 1)

    def ckpt():
        lora = {k: v for k, v in student.state_dict().items() if "lora_" in k}
        return dict(model=lora, opt=opt.state_dict(), gen=g.get_state(), step=step, wall_s=wall + budget.elapsed())

    student.train()
    while budget.more():
        idx = torch.randint(0, len(mean), (bs,), generator=g)
        lat = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * sf
        noise = torch.randn(lat.shape, generator=g)
        index = torch.randint(0, args.num_ddim_timesteps, (bs,), generator=g)
        start_t = solver.ddim_timesteps[index]
        t = torch.clamp(start_t - topk, min=0)
        c_skip_s, c_out_s = [c.view(-1, 1, 1, 1) for c in scalings_for_boundary_conditions(start_t.float())]
        c_skip, c_out = [c.view(-1, 1, 1, 1) for c in scalings_for_boundary_conditions(t.float())]
        noisy = sched.add_noise(lat, noise, start_t)
        w = (args.w_max - args.w_min) * torch.rand((bs,), generator=g) + args.w_min
        w = w.view(-1, 1, 1, 1)
        # the real prompt distribution of the data: NORMAL captions for normal latents would need labels; the
        # teacher only knows normal captions, so all captions come from NORMAL_CAPTIONS
        cap = torch.randint(0, len(NORMAL_CAPTIONS), (bs,), generator=g)
        cond = cond_all[cap]
        pred_eps = student(noisy, start_t, cond).sample
        model_pred = c_skip_s * noisy + c_out_s * x0_of(pred_eps, start_t, noisy)
        with torch.no_grad():
            both = teacher(torch.cat([noisy, noisy]), torch.cat([start_t, start_t]),
                           torch.cat([cond, uncond.expand(bs, -1, -1)])).sample
            c_eps, u_eps = both.chunk(2)
            c_x0, u_x0 = x0_of(c_eps, start_t, noisy), x0_of(u_eps, start_t, noisy)
            pred_x0 = c_x0 + w * (c_x0 - u_x0)
            pred_noise = c_eps + w * (c_eps - u_eps)
            x_prev = solver.ddim_step(pred_x0, pred_noise, index)
            target_eps = student(x_prev, t, cond).sample
            target = c_skip * x_prev + c_out * x0_of(target_eps, t, x_prev)
        loss = F.mse_loss(model_pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        budget.step = step
        log.append({"step": step, "loss": float(loss.detach())})
        if args.log_every and step % args.log_every == 0:
            print(f"lcm step {step} loss {np.mean([r['loss'] for r in log[-args.log_every:]]):.5f} "
                  f"{budget.elapsed():.0f}s", flush=True)
        if time.time() - last_save > 300:
            _append_log(sdir / "train_log.jsonl", log)
            log = []
            save_ckpt(sdir / "ckpt.pt", ckpt())
            last_save = time.time()
    _append_log(sdir / "train_log.jsonl", log)
    save_ckpt(sdir / "ckpt.pt", ckpt())
    wall += budget.elapsed()
    save_lcm_lora(student, sdir / "lora")
    losses = [json.loads(line)["loss"] for line in (sdir / "train_log.jsonl").read_text().splitlines()]
    k = min(50, len(losses))
    summary = dict(step=step, wall_s=round(wall, 1), start_loss=float(np.mean(losses[:k])),
                   end_loss=float(np.mean(losses[-k:])), rank=rank, lr=lr, batch_size=bs, w_min=args.w_min,
                   w_max=args.w_max, num_ddim_timesteps=args.num_ddim_timesteps, images=int(len(mean)),
                   recipe="diffusers train_lcm_distill_lora_sd_wds.py (DDIM solver, CFG teacher, L2, no EMA target)")
    _write_json(sdir / "summary.json", summary)
    print(json.dumps(summary), flush=True)
    return summary


# ----------------------------------------------------------------------------------------------------------------
# Stage: lora-data
# ----------------------------------------------------------------------------------------------------------------


def stage_lora_data(args) -> dict:
    rows = list_split(args.data, "train", ("PNEUMONIA",))
    rng = np.random.default_rng(args.seed)
    n = min(args.max_images or 512, len(rows))
    pick = sorted(rng.permutation(len(rows))[:n])
    out = Path(args.run_dir) / "lora-data"
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"file_name": str(Path(rows[i][0]).resolve()), "text": PNEUMONIA_CAPTION}) for i in pick]
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    summary = {"images": n, "caption": PNEUMONIA_CAPTION, "metadata": str(out / "metadata.jsonl")}
    print(json.dumps(summary))
    return summary


# ----------------------------------------------------------------------------------------------------------------
# Stage: export
# ----------------------------------------------------------------------------------------------------------------


def stage_export(args) -> dict:
    from . import manifest as mf
    from .sd import export_sd, prepare

    _setup(args)
    run = Path(args.run_dir)
    lcm = run / "lcm" / "lora"
    lora = run / "lora"
    if not (lcm / "pytorch_lora_weights.safetensors").exists():
        raise ExportError(f"{lcm}: no LCM-LoRA; run `train-generator lcm` first")
    if not (lora / "adapter_config.json").exists():
        raise ExportError(f"{lora}: no domain LoRA; run `cxr-export lora --pretrained {run / 'base'} ...` first")
    dec = run / "vae-decoder" / "model"
    if (dec / "config.json").exists():  # same encoder (checked when it was written), better decoder
        import shutil

        shutil.rmtree(run / "base" / "vae")
        shutil.copytree(dec, run / "base" / "vae")
    parts, unet_lora, lora_info, _ = prepare("full", args.seed, run / "base", lcm, lora, False)
    extra = {}
    if args.unet_layout != "two-graph":  # genapp's `cxr-export sd --unet-layout`: one UNet, runtime lora_scale
        from . import sd

        if not hasattr(sd, "scaled_lora_unet"):
            raise ExportError("--unet-layout scaled needs sd.scaled_lora_unet (cxr-export sd --unet-layout)")
        extra = dict(unet_scaled=sd.scaled_lora_unet(parts["unet"], lora), unet_layout=args.unet_layout)
        if args.unet_layout == "scaled":
            unet_lora = None
    entry = export_sd(parts, args.out_dir, args.model_id, "trained", unet_lora=unet_lora, seed=args.seed,
                      lora_info=lora_info, lcm_source="LCM-LoRA distilled here (train-generator lcm)",
                      write_manifest=False, **extra)
    if entry["config"].get("domain_lora"):  # a path on the training machine means nothing to the app
        entry["config"]["domain_lora"]["path"] = "RUN/lora (train-generator run folder, not shipped)"
    entry.update(_card(run))
    mf.upsert_entry(args.out_dir, entry)
    total = sum(f.stat().st_size for f in (Path(args.out_dir) / args.model_id).iterdir())
    print(json.dumps({"id": entry["id"], "parity": entry["config"]["parity"], "bytes": total}))
    return entry


def _summary(run: Path, stage: str) -> dict:
    p = run / stage / ("train_summary.json" if stage == "lora" else "summary.json")
    return json.loads(p.read_text()) if p.exists() else {}


def _card(run: Path, metrics: dict | None = None) -> dict:
    s = {k: _summary(run, k) for k in ("vae", "vae-decoder", "unet", "lcm", "lora")}
    if "losses" in s["lora"]:
        s["lora"].pop("losses")
    card = {
        "summary": "A small research generator of pediatric chest X-ray-like images (64 px), trained in this "
                   "project on the Kermany train split: AutoencoderKL + UNet2DConditionModel + frozen random-init "
                   "CLIP text encoder (SD 1.x architecture, small widths), LCM-LoRA distilled for 2-8 step "
                   "sampling; unet_lora adds a pneumonia LoRA (cxr-export lora). NOT a medical image source.",
        "limitations": "64x64 px, blurry, pediatric AP views only; the text encoder is random and frozen, so "
                       "prompts other than the training captions mean little. Synthetic images are not for "
                       "clinical use or for training diagnostic models.",
        "training": s,
        "data": "Kermany et al. 2018 (CC BY 4.0), train split only; the test split is the evaluation reference.",
    }
    if metrics:
        card["metrics"] = metrics
    return {"name": "CXR latent diffusion + LCM (trained here, 64 px)", "license": "MIT (weights trained here; "
            "data CC BY 4.0)", "source": "trained by cxr-export train-generator (vae, unet, lcm) + cxr-export lora",
            "card": card}


# ----------------------------------------------------------------------------------------------------------------
# Stage: eval
# ----------------------------------------------------------------------------------------------------------------


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets [N,D] (Heusel et al. 2017, the FID formula)
    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), with Tr((S_a S_b)^1/2) = Tr((A S_b A)^1/2), A = S_a^1/2
    (symmetric eigendecompositions; float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    ev, V = np.linalg.eigh(sa)
    A = (V * np.sqrt(np.clip(ev, 0, None))) @ V.T
    m = A @ sb @ A
    tr = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * tr)


class Classifier:
    """public/models/pneumonia-vit (ONNX): pixel_values [b,3,224,224] ((x - 0.5) / 0.5) -> probabilities [b,2],
    embedding [b,D]; PNEUMONIA when P >= the card's validation threshold."""

    def __init__(self, models_dir: Path, model_id: str = "pneumonia-vit"):
        import onnxruntime as ort

        from . import manifest as mf

        entry = next((m for m in mf.load(models_dir)["models"] if m["id"] == model_id), None)
        if entry is None:
            raise ExportError(f"{models_dir}: no {model_id} in manifest.json")
        self.threshold = float(entry.get("card", {}).get("threshold", 0.5))
        self.pos = entry["labels"].index("PNEUMONIA")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(Path(models_dir) / entry["variants"]["fp32"]["files"][0]["path"]), so,
                                         providers=["CPUExecutionProvider"])

    def __call__(self, gray01: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """gray01 float [N,H,W] in [0,1] at any size (bilinear to 224) -> (P(PNEUMONIA) [N], embedding [N,D])."""
        import torch
        import torch.nn.functional as F

        probs, embs = [], []
        for i in range(0, len(gray01), batch):
            x = torch.from_numpy(np.asarray(gray01[i:i + batch], np.float32))[:, None]
            if x.shape[-1] != 224:
                x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            x = ((x.clamp(0, 1) - 0.5) / 0.5).expand(-1, 3, -1, -1).contiguous().numpy()
            out = self.sess.run(["probabilities", "embedding"], {"pixel_values": x})
            probs.append(out[0][:, self.pos])
            embs.append(out[1])
        return np.concatenate(probs), np.concatenate(embs)


def lcm_sample_onnx(folder: Path, graph: str, prompt: str, n: int, steps: int, seed: int, batch: int = 64):
    """LCM sampling with the exported graphs (what the app runs): [n,H,W] gray in [0,1]. Initial latents and step
    noise come from torch.Generator(seed); the same seed gives the same noise for unet and unet_lora."""
    import onnxruntime as ort
    import torch
    from diffusers import LCMScheduler
    from tokenizers import Tokenizer

    cfg = json.loads((folder / "scheduler_config.json").read_text())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    # layout "scaled" (one UNet with a runtime lora_scale input [b]: 0 = base, 1 = LoRA) when unet*.onnx is absent
    lora_scale = None
    if not (folder / f"{graph}.onnx").exists() and (folder / "unet_scaled.onnx").exists():
        lora_scale = 1.0 if graph == "unet_lora" else 0.0
        graph = "unet_scaled"
    sess = {k: ort.InferenceSession(str(folder / f"{k}.onnx"), so, providers=["CPUExecutionProvider"])
            for k in ("text_encoder", graph, "vae_decoder")}
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = np.array([tok.encode(prompt).ids], np.int64)
    states = sess["text_encoder"].run(None, {"input_ids": ids})[0]
    man = json.loads((folder.parent / "manifest.json").read_text())
    conf = next(m for m in man["models"] if m["id"] == folder.name)["config"]
    sf, ls = float(conf["scaling_factor"]), int(conf["latent_size"])
    g = torch.Generator().manual_seed(seed)
    lat_all = torch.randn((n, 4, ls, ls), generator=g)
    imgs = []
    for i in range(0, n, batch):
        sch = LCMScheduler.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
        sch.set_timesteps(steps)
        x = lat_all[i:i + batch]
        b = len(x)
        gs = torch.Generator().manual_seed(seed * 1000 + i)
        for t in sch.timesteps:
            feeds = {"sample": x.numpy(), "timestep": np.full((b,), float(t), np.float32),
                     "encoder_hidden_states": np.repeat(states, b, 0)}
            if lora_scale is not None:
                feeds["lora_scale"] = np.full((b,), lora_scale, np.float32)
            eps = sess[graph].run(None, feeds)[0]
            x = sch.step(torch.from_numpy(eps), t, x, generator=gs).denoised if t == sch.timesteps[-1] else \
                sch.step(torch.from_numpy(eps), t, x, generator=gs).prev_sample
        img = sess["vae_decoder"].run(None, {"latent_sample": (x / sf).numpy().astype(np.float32)})[0]
        imgs.append(np.clip(img.mean(1) / 2 + 0.5, 0, 1))
    return np.concatenate(imgs)


def ddim_sample_torch(unet, vae, tok, text_encoder, prompt: str, n: int, steps: int, guidance: float, seed: int,
                      batch: int = 64):
    """50-step DDIM (eta 0) of an undistilled UNet with classifier-free guidance: [n,H,W] gray in [0,1]."""
    import torch
    from diffusers import DDIMScheduler

    cond = text_states(tok, text_encoder, [prompt])
    uncond = text_states(tok, text_encoder, [""])
    sf = float(vae.config.scaling_factor)
    ls = int(unet.config.sample_size)
    g = torch.Generator().manual_seed(seed)
    lat_all = torch.randn((n, 4, ls, ls), generator=g)
    imgs = []
    with torch.no_grad():
        for i in range(0, n, batch):
            sch = DDIMScheduler.from_config(ddpm_config())
            sch.set_timesteps(steps)
            x = lat_all[i:i + batch]
            b = len(x)
            emb = torch.cat([cond.expand(b, -1, -1), uncond.expand(b, -1, -1)])
            for t in sch.timesteps:
                c, u = unet(torch.cat([x, x]), t, emb).sample.chunk(2)
                x = sch.step(u + guidance * (c - u), t, x).prev_sample
            img = vae.decode(x / sf).sample
            imgs.append(np.clip(img.mean(1).numpy() / 2 + 0.5, 0, 1))
    return np.concatenate(imgs)


def write_grid(path: Path, rows: list[tuple[str, np.ndarray]], cols: int = 8, scale: int = 2) -> None:
    """PNG grid: one row per (label, images [>=cols,H,W] in [0,1]); label text at the left (PIL default font)."""
    from PIL import Image, ImageDraw

    h = rows[0][1].shape[1] * scale
    label_w = 150
    grid = Image.new("L", (label_w + cols * (h + 2), len(rows) * (h + 2)), 255)
    d = ImageDraw.Draw(grid)
    for r, (label, ims) in enumerate(rows):
        d.text((4, r * (h + 2) + h // 2 - 6), label, fill=0)
        for c in range(cols):
            im = Image.fromarray((ims[c] * 255).round().astype(np.uint8)).resize((h, h), Image.NEAREST)
            grid.paste(im, (label_w + c * (h + 2), r * (h + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, optimize=True)


def _real_embeddings(args, clf, size: int, n: int, seed: int) -> dict:
    """Classifier outputs of real images, cached in RUN/eval/ref.npz: all test images per class, and n seeded
    train images per class (the floor), each at native 224 px and round-tripped through the generator's
    resolution (size px, then bilinear back to 224, like the generated images)."""
    path = Path(args.run_dir) / "eval" / f"ref-{size}-{n}-{seed}.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    test = list_split(args.data, "test")
    trainrows = list_split(args.data, "train")
    rng = np.random.default_rng(seed)
    out = {}
    for lab in ("NORMAL", "PNEUMONIA"):
        tr = [r for r in trainrows if r[1] == lab]
        tr = [tr[i] for i in sorted(rng.permutation(len(tr))[:n])]
        te = [r for r in test if r[1] == lab]
        for split, rows in (("test", te), ("train", tr)):
            for res in (224, size):
                p, e = clf(load_gray([q for q, _ in rows], res).astype(np.float32) / 255)
                out[f"{split}_{lab}_{res}_p"], out[f"{split}_{lab}_{res}_e"] = p, e
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def stage_eval(args) -> dict:
    """Computes the parts named in --parts (each cached in RUN/eval/<part>.npz; delete RUN/eval after retraining)
    and, with 'report' among them, combines every cached part into RUN/eval/metrics.json, the grid and the
    manifest card."""
    import torch  # noqa: F401  (imported before onnxruntime: one OpenMP runtime)

    from . import manifest as mf
    from .sd import apply_domain_lora

    _setup(args)
    t0 = time.time()
    run = Path(args.run_dir)
    edir = run / "eval"
    edir.mkdir(parents=True, exist_ok=True)
    folder = Path(args.out_dir) / args.model_id
    clf = Classifier(Path(args.classifier_dir or args.out_dir))
    n, seed, size = args.n_eval, args.seed + 2024, GEN_SIZES[args.size]["image_size"]
    n_ddim = args.n_ddim or n
    parts = set(args.parts)
    ref = _real_embeddings(args, clf, size, n, seed)

    def gen(key: str, make) -> None:
        path = edir / f"{key}-{n if key.startswith('lcm') else n_ddim}.npz"
        if path.exists():
            return
        t = time.time()
        imgs = make()
        p, e = clf(imgs)
        np.savez(path, p=p, e=e, first=imgs[:8], wall_s=time.time() - t)
        print(f"{key}: frac PNEUMONIA {(p >= clf.threshold).mean():.3f} ({time.time() - t:.0f}s)", flush=True)

    if "lcm" in parts:
        for steps in args.lcm_steps:
            for side, graph in (("base", "unet"), ("lora", "unet_lora")):
                gen(f"lcm{steps}_{side}", lambda: lcm_sample_onnx(folder, graph, PNEUMONIA_CAPTION, n, steps, seed))
    guidance = 1.0 + (args.w_min + args.w_max) / 2
    for side in ("base", "lora"):
        if f"ddim-{side}" in parts and args.ddim_steps:
            sd_parts = load_base(run)
            unet = sd_parts["unet"]
            if side == "lora":
                unet = apply_domain_lora(copy.deepcopy(unet), run / "lora")
            gen(f"ddim{args.ddim_steps}_{side}", lambda: ddim_sample_torch(
                unet, sd_parts["vae"], sd_parts["tokenizer"], sd_parts["text_encoder"], PNEUMONIA_CAPTION, n_ddim,
                args.ddim_steps, guidance, seed))
    if "report" not in parts:
        return {}
    te_all = np.concatenate([ref[f"test_NORMAL_{size}_e"], ref[f"test_PNEUMONIA_{size}_e"]])
    metrics: dict[str, Any] = {"n_per_side": n, "n_ddim_per_side": n_ddim, "prompt": PNEUMONIA_CAPTION,
                               "classifier": "pneumonia-vit", "classifier_threshold": clf.threshold,
                               "image_size": size, "ddim_guidance_scale": guidance,
                               "lcm_guidance_scale": "1 (CFG distilled in, w ~ U[%g, %g])" % (args.w_min, args.w_max)}
    thr = clf.threshold
    for lab in ("NORMAL", "PNEUMONIA"):
        for res in (224, size):
            metrics[f"real_test_{lab}_{res}px_frac_pneumonia"] = float((ref[f"test_{lab}_{res}_p"] >= thr).mean())
            metrics[f"real_train_{lab}_{res}px_frac_pneumonia"] = float((ref[f"train_{lab}_{res}_p"] >= thr).mean())
            metrics[f"fd_floor_train_vs_test_{lab}_{res}px"] = frechet_distance(ref[f"train_{lab}_{res}_e"],
                                                                                ref[f"test_{lab}_{res}_e"])
        metrics[f"fd_floor_train_{lab}_vs_test_all_{size}px"] = frechet_distance(ref[f"train_{lab}_{size}_e"], te_all)
    keep: dict[str, np.ndarray] = {}
    keys = [f"lcm{s}_{side}" for s in args.lcm_steps for side in ("base", "lora")]
    keys += [f"ddim{args.ddim_steps}_{side}" for side in ("base", "lora")] if args.ddim_steps else []
    for key in keys:
        path = edir / f"{key}-{n if key.startswith('lcm') else n_ddim}.npz"
        if not path.exists():
            continue
        z = np.load(path)
        p, e = z["p"], z["e"]
        keep[key] = z["first"]
        metrics[f"{key}_frac_pneumonia"] = float((p >= thr).mean())
        metrics[f"{key}_mean_p_pneumonia"] = float(p.mean())
        metrics[f"{key}_fd_vs_test_NORMAL"] = frechet_distance(e, ref[f"test_NORMAL_{size}_e"])
        metrics[f"{key}_fd_vs_test_PNEUMONIA"] = frechet_distance(e, ref[f"test_PNEUMONIA_{size}_e"])
        metrics[f"{key}_fd_vs_test_all"] = frechet_distance(e, te_all)
        metrics[f"{key}_sample_wall_s"] = round(float(z["wall_s"]), 1)
    # the LoRA's loss curve: mean loss per bin of its train_log.jsonl
    lora_log = run / "lora" / "train_log.jsonl"
    if lora_log.exists():
        losses = [json.loads(line)["loss"] for line in lora_log.read_text().splitlines() if line.strip()]
        nb = min(20, len(losses))
        edges = np.linspace(0, len(losses), nb + 1).astype(int)
        metrics["lora_loss_curve"] = [{"steps": f"{edges[i] + 1}-{edges[i + 1]}",
                                       "mean_loss": float(np.mean(losses[edges[i]:edges[i + 1]]))} for i in range(nb)]
    metrics["report_wall_s"] = round(time.time() - t0, 1)
    _write_json(edir / "metrics.json", metrics)
    rows = [(f"{k.split('_')[0].upper()} {k.split('_')[1]}", v) for k, v in keep.items()]
    if args.grid and rows:
        write_grid(Path(args.grid), rows)
    man = mf.load(Path(args.out_dir))
    entry = next((m for m in man["models"] if m["id"] == args.model_id), None)
    if entry is not None:  # the manifest card gets the numbers
        entry.update(_card(run, metrics))
        mf.upsert_entry(Path(args.out_dir), entry)
    print(json.dumps({k: v for k, v in metrics.items() if k != "lora_loss_curve"}, indent=1), flush=True)
    return metrics


# ----------------------------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------------------------

STAGES = {"vae": stage_vae, "vae-decoder": stage_vae_decoder, "unet": stage_unet, "lcm": stage_lcm, "lora-data": stage_lora_data,
          "export": stage_export, "eval": stage_eval}


def run(args: argparse.Namespace):
    if args.data is None:
        from .data import shared_dir

        args.data = shared_dir() / "data" / "kermany-cxr-224"
    return STAGES[args.stage](args)


def register(subparsers) -> None:
    from .common import models_dir_default

    p = subparsers.add_parser("train-generator", help="train the project's small latent diffusion generator",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument("--run-dir", type=Path, default=runs_default(), help="checkpoints and stage outputs")
    p.add_argument("--data", type=Path, default=None, help="Kermany-style root with train/ and test/ "
                   "(default ../shared/data/kermany-cxr-224)")
    p.add_argument("--size", choices=list(GEN_SIZES), default="small")
    p.add_argument("--time-budget-min", type=float, default=None, help="stop (and checkpoint) after this wall time")
    p.add_argument("--max-steps", type=int, default=10**9, help="total steps of the stage (across resumes)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-images", type=int, default=None, help="seeded subset of the training images")
    p.add_argument("--kl-weight", type=float, default=1e-5, help="vae: KL weight per pixel")
    p.add_argument("--ema", type=float, default=0.999, help="unet: EMA decay")
    p.add_argument("--lcm-rank", type=int, default=None)
    p.add_argument("--w-min", type=float, default=1.0, help="lcm: CFG w ~ U[w_min, w_max] (guidance = 1 + w)")
    p.add_argument("--w-max", type=float, default=2.0)
    p.add_argument("--num-ddim-timesteps", type=int, default=50)
    p.add_argument("--out-dir", type=Path, default=models_dir_default(), help="models root (export / eval)")
    p.add_argument("--id", dest="model_id", default=MODEL_ID)
    p.add_argument("--classifier-dir", type=Path, default=None, help="eval: models root holding pneumonia-vit "
                   "(default: --out-dir)")
    p.add_argument("--unet-layout", choices=["two-graph", "scaled", "both"], default="two-graph",
                   help="export: unet + unet_lora, or one unet_scaled with a lora_scale input (cxr-export sd)")
    p.add_argument("--n-eval", type=int, default=256, help="eval: generated images per side")
    p.add_argument("--lcm-steps", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--ddim-steps", type=int, default=50, help="eval: DDIM steps of the undistilled UNet (0: skip)")
    p.add_argument("--n-ddim", type=int, default=None, help="eval: DDIM images per side (default --n-eval)")
    p.add_argument("--parts", nargs="+", default=["lcm", "ddim-base", "ddim-lora", "report"],
                   choices=["ref", "lcm", "ddim-base", "ddim-lora", "report"], help="eval: what to compute")
    p.add_argument("--grid", type=Path, default=None, help="eval: write the image grid here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--log-every", type=int, default=25)
    p.set_defaults(func=run)
