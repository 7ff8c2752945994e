"""Stages `vae` and `vae-decoder` of `cxr-export train-generator`: the AutoencoderKL trained on all train images
(L1 + per-pixel KL; scaling_factor = 1 / std of the latents), then its decoder fine-tuned with the encoder frozen
(L1 + image-gradient L1), so the latent space the UNet learned stays the same."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import ExportError
from .gen_data import Budget, _setup, _write_json, to_pixels, train_images
from .gen_loop import resume, train_loop
from .gen_models import GEN_SIZES, build_vae, load_vae


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

    ck = resume(sdir, vae, opt, g)
    if ck:
        step, init_l1, wall = ck["step"], ck["recon_l1_init"], ck["wall_s"]
    else:
        step, init_l1, wall = 0, recon_l1(), 0.0
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 16
    pix_per_sample = 3 * spec["image_size"] ** 2

    def train_step(_step: int) -> dict:
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
        return {"loss": float(loss.detach()), "l1": float(l1.detach()), "kl": float(kl.detach())}

    def ckpt(s: int) -> dict:
        return dict(model=vae.state_dict(), opt=opt.state_dict(), gen=g.get_state(), step=s, recon_l1_init=init_l1,
                    wall_s=wall + budget.elapsed())

    vae.train()
    step = train_loop(sdir, "vae", budget, step, train_step, ckpt, args.log_every, show="l1")
    wall += budget.elapsed()
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

    ck = resume(sdir, vae, opt, g)
    if ck:
        step, init_l1, wall = ck["step"], ck["recon_l1_init"], ck["wall_s"]
    else:
        step, init_l1, wall = 0, recon_l1(), 0.0
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 16

    def grads(im):
        return im[..., 1:, :] - im[..., :-1, :], im[..., :, 1:] - im[..., :, :-1]

    def train_step(_step: int) -> dict:
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
        return {"loss": float(loss.detach()), "l1": float(l1.detach())}

    def ckpt(s: int) -> dict:
        return dict(model=vae.state_dict(), opt=opt.state_dict(), gen=g.get_state(), step=s,
                    recon_l1_init=init_l1, wall_s=wall + budget.elapsed())

    vae.decoder.train()
    step = train_loop(sdir, "vae-decoder", budget, step, train_step, ckpt, args.log_every, show="l1")
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
