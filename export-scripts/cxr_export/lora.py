"""`cxr-export lora`: LoRA fine-tuning of the SD 1.5 UNet on an image/caption folder (diffusers
train_text_to_image_lora objective), saved as a peft adapter for `cxr-export sd --lora`.

Data: DIR/metadata.jsonl, one {"file_name": ..., "text": ...} per line (file_name relative to DIR, or absolute).
Objective: VAE encode -> latents * scaling_factor; noise ~ N(0,1); t ~ U{0..T-1}; DDPMScheduler.add_noise;
CLIP text encoder hidden states; MSE(UNet(noisy, t, text), noise). Only the LoRA (to_q, to_k, to_v, to_out.0)
trains. Writes OUT/adapter_config.json + adapter_model.safetensors (peft save_pretrained), OUT/train_log.jsonl (one
line per step) and OUT/train_summary.json (start/end loss = mean of the first/last 10 steps).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .clip import encode_ids, seed_all, torch_threads, write_json
from .errors import ExportError
from .onnx_utils import atomic_dir
from .sd import build_sd

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def read_metadata(data_dir: Path, max_images: int | None = None) -> list[tuple[Path, str]]:
    data_dir = Path(data_dir)
    meta = data_dir / "metadata.jsonl"
    if not meta.exists():
        raise ExportError(f"--data {data_dir}: no metadata.jsonl (lines of {{\"file_name\": ..., \"text\": ...}})")
    rows = []
    for n, line in enumerate(meta.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            path, text = data_dir / rec["file_name"], str(rec["text"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ExportError(f"{meta}:{n}: expected {{\"file_name\", \"text\"}}: {exc}") from exc
        if not path.exists():
            raise ExportError(f"{meta}:{n}: image {path} not found")
        rows.append((path, text))
    if not rows:
        raise ExportError(f"{meta}: no rows")
    return rows[:max_images] if max_images else rows


def load_images(rows, resolution: int):
    """RGB, shorter side resized to `resolution` (bilinear), center crop, scaled to [-1, 1], NCHW float32."""
    import torch
    from PIL import Image

    from .images import open_rgb

    out = []
    for path, _ in rows:
        with open_rgb(path) as im:
            w, h = im.size
            s = resolution / min(w, h)
            im = im.resize((max(resolution, round(w * s)), max(resolution, round(h * s))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - resolution) // 2, (h - resolution) // 2
            im = im.crop((left, top, left + resolution, top + resolution))
            arr = np.asarray(im, dtype=np.float32) / 127.5 - 1.0
        out.append(torch.from_numpy(arr.transpose(2, 0, 1).copy()))
    return torch.stack(out)


def train_lora(data_dir: Path, out_dir: Path, *, size: str = "tiny", pretrained: Path | None = None,
               rank: int = 4, alpha: float | None = None, lr: float = 1e-4, steps: int = 100,
               resolution: int | None = None, seed: int = 0, batch_size: int = 1, max_images: int | None = None,
               log_every: int = 0, threads: int = 0) -> dict:
    """Trains the LoRA and writes the adapter folder atomically; returns the summary dict."""
    import torch
    import torch.nn.functional as F
    from diffusers import DDPMScheduler
    from peft import LoraConfig, get_peft_model

    torch_threads()
    # tiny models: many small kernels, where a second thread only adds sync overhead (10x slower on a busy CPU)
    torch.set_num_threads(threads or (1 if size == "tiny" and pretrained is None else torch.get_num_threads()))
    if steps < 1 or rank < 1 or batch_size < 1:
        raise ExportError("--steps, --rank and --batch-size must be >= 1")
    t0 = time.time()
    rows = read_metadata(data_dir, max_images)
    parts = build_sd(size, seed, pretrained)
    info = parts["info"]
    resolution = resolution or info["image_size"]
    if resolution % info["vae_scale_factor"]:
        raise ExportError(f"--resolution {resolution} must be a multiple of the VAE factor {info['vae_scale_factor']}")
    tok, text_encoder, vae, unet = parts["tokenizer"], parts["text_encoder"], parts["vae"], parts["unet"]
    sched_cfg = {k: v for k, v in parts["scheduler_config"].items() if not k.startswith("_")}
    noise_scheduler = DDPMScheduler.from_config(sched_cfg)

    # Frozen parts run once: VAE posterior (mean, std) per image and text hidden states per caption.
    pixels = load_images(rows, resolution)
    ids = torch.from_numpy(encode_ids(tok, [t for _, t in rows]))
    with torch.no_grad():
        post = vae.encode(pixels).latent_dist
        lat_mean, lat_std = post.mean, post.std
        text_states = text_encoder(input_ids=ids).last_hidden_state

    seed_all(seed)
    config = LoraConfig(r=rank, lora_alpha=alpha if alpha is not None else rank, init_lora_weights="gaussian",
                        target_modules=LORA_TARGETS)
    model = get_peft_model(unet, config)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), weight_decay=1e-2, eps=1e-8)
    g = torch.Generator().manual_seed(seed)
    n = len(rows)
    scale = float(vae.config.scaling_factor)
    losses: list[float] = []
    log_lines: list[str] = []
    for step in range(1, steps + 1):
        idx = torch.randint(0, n, (batch_size,), generator=g)
        latents = (lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=g)) * scale
        noise = torch.randn(latents.shape, generator=g)
        timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (batch_size,), generator=g).long()
        noisy = noise_scheduler.add_noise(latents, noise, timesteps)
        pred = model(noisy, timesteps, text_states[idx], return_dict=False)[0]
        loss = F.mse_loss(pred.float(), noise.float(), reduction="mean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.item()))
        log_lines.append(json.dumps({"step": step, "loss": losses[-1], "lr": lr,
                                     "timesteps": timesteps.tolist()}))
        if log_every and step % log_every == 0:
            print(f"step {step}/{steps} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    k = min(10, len(losses))
    summary = {
        "steps": steps, "rank": rank, "alpha": alpha if alpha is not None else rank, "lr": lr,
        "batch_size": batch_size, "resolution": resolution, "seed": seed, "images": n,
        "target_modules": LORA_TARGETS, "base": info["source"], "size": size,
        "start_loss": float(np.mean(losses[:k])), "end_loss": float(np.mean(losses[-k:])),
        "first_loss": losses[0], "last_loss": losses[-1], "wall_s": round(time.time() - t0, 2),
        "objective": "diffusers train_text_to_image_lora: MSE on epsilon, DDPM add_noise, uniform timesteps",
    }
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))  # adapter_config.json + adapter_model.safetensors
        (tmp / "README.md").unlink(missing_ok=True)  # peft's empty model-card template
        (tmp / "train_log.jsonl").write_text("\n".join(log_lines) + "\n")
        write_json(tmp / "train_summary.json", summary)
        for f in tmp.iterdir():
            f.chmod(0o644)
    return summary


def run(args: argparse.Namespace) -> dict:
    if not args.random_init and not args.pretrained:
        raise ExportError("give --pretrained DIR (diffusers SD 1.5 folder) or --random-init")
    summary = train_lora(args.data, args.out, size=args.size, pretrained=None if args.random_init else args.pretrained,
                         rank=args.rank, alpha=args.alpha, lr=args.lr, steps=args.steps, resolution=args.resolution,
                         seed=args.seed, batch_size=args.batch_size, max_images=args.max_images,
                         log_every=args.log_every, threads=args.threads)
    print(json.dumps({k: summary[k] for k in ("steps", "start_loss", "end_loss", "wall_s")}))
    return summary


def register(subparsers) -> None:
    p = subparsers.add_parser("lora", help="train a LoRA for the SD 1.5 UNet on a metadata.jsonl folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help="folder with metadata.jsonl (file_name, text)")
    p.add_argument("--out", type=Path, required=True, help="adapter output folder (replaced atomically)")
    p.add_argument("--pretrained", type=Path, default=None, help="diffusers SD 1.5 folder")
    p.add_argument("--random-init", action="store_true", help="random SD weights (architecture from sd.py)")
    p.add_argument("--size", choices=["tiny", "full"], default="full")
    p.add_argument("--rank", type=int, default=4)
    p.add_argument("--alpha", type=float, default=None, help="lora_alpha (default: rank)")
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--resolution", type=int, default=None, help="training image side (default: the model's)")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: 1 for tiny, else 2)")
    p.set_defaults(func=run)
