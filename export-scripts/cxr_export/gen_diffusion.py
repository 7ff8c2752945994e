"""Stages `unet` and `lcm` of `cxr-export train-generator`: the UNet2DConditionModel trained with the epsilon
objective on NORMAL latents (EMA weights, 10% empty captions), written as RUN/base (a diffusers SD folder); then its
latent consistency distillation as an LCM-LoRA, the recipe of diffusers' examples/consistency_distillation/
train_lcm_distill_lora_sd_wds.py (DDIM solver, CFG teacher, L2, the student itself as target). The LCM math (boundary
scalings, x0 from epsilon, the consistency output) is lcm_scheduler.py's, the same the goldens are checked with."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from .gen_data import Budget, _setup, _write_json
from .gen_loop import resume, train_loop
from .gen_models import (GEN_SIZES, NORMAL_CAPTIONS, PNEUMONIA_CAPTION, UNCOND_P, build_text, build_unet,
                         cached_latents, ddpm_config, gen_tokenizer, load_base, load_vae, text_states,
                         write_base_folder)
from .lcm_scheduler import boundary_scalings, consistency_output, predicted_original_sample


def stage_unet(args) -> dict:
    """Trains the UNet (epsilon objective, SD 1.5's DDPM schedule) on the NORMAL train latents with EMA weights;
    writes RUN/base; returns dict(step, start_loss, end_loss, wall_s, ...)."""
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
    ck = resume(sdir, unet, opt, g)
    step, wall = 0, 0.0
    if ck:
        ema.load_state_dict(ck["ema"])
        step, wall = ck["step"], ck["wall_s"]
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 32
    warmup = 100

    def ckpt(s: int) -> dict:
        return dict(model=unet.state_dict(), ema=ema.state_dict(), opt=opt.state_dict(), gen=g.get_state(),
                    step=s, wall_s=wall + budget.elapsed())

    def train_step(done: int) -> dict:
        for pg in opt.param_groups:
            pg["lr"] = lr * min(1.0, (done + 1) / warmup)
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
        decay = min(args.ema, (1 + done + 1) / (10 + done + 1))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), unet.parameters()):
                pe.mul_(decay).add_(pm.detach(), alpha=1 - decay)
        return {"loss": float(loss.detach())}

    unet.train()
    step = train_loop(sdir, "unet", budget, step, train_step, ckpt, args.log_every)
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
    """Distils RUN/base into an LCM-LoRA (rank --lcm-rank) on all train latents; writes RUN/lcm/lora; returns
    dict(step, start_loss, end_loss, rank, wall_s, ...)."""
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
    ck = resume(sdir, student, opt, g, strict=False)
    step, wall = 0, 0.0
    if ck:
        step, wall = ck["step"], ck["wall_s"]
    budget = Budget(args.time_budget_min, args.max_steps, step)
    bs = args.batch_size or 32

    def x0_of(eps, t, x):
        return predicted_original_sample(eps, x, alpha_s[t].view(-1, 1, 1, 1), sigma_s[t].view(-1, 1, 1, 1))

    def ckpt(s: int) -> dict:
        lora = {k: v for k, v in student.state_dict().items() if "lora_" in k}
        return dict(model=lora, opt=opt.state_dict(), gen=g.get_state(), step=s, wall_s=wall + budget.elapsed())

    def train_step(_done: int) -> dict:
        idx = torch.randint(0, len(mean), (bs,), generator=g)
        lat = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=g)) * sf
        noise = torch.randn(lat.shape, generator=g)
        index = torch.randint(0, args.num_ddim_timesteps, (bs,), generator=g)
        start_t = solver.ddim_timesteps[index]
        t = torch.clamp(start_t - topk, min=0)
        c_skip_s, c_out_s = [c.view(-1, 1, 1, 1) for c in boundary_scalings(start_t.float())]
        c_skip, c_out = [c.view(-1, 1, 1, 1) for c in boundary_scalings(t.float())]
        noisy = sched.add_noise(lat, noise, start_t)
        w = (args.w_max - args.w_min) * torch.rand((bs,), generator=g) + args.w_min
        w = w.view(-1, 1, 1, 1)
        # the real prompt distribution of the data: NORMAL captions for normal latents would need labels; the
        # teacher only knows normal captions, so all captions come from NORMAL_CAPTIONS
        cap = torch.randint(0, len(NORMAL_CAPTIONS), (bs,), generator=g)
        cond = cond_all[cap]
        pred_eps = student(noisy, start_t, cond).sample
        model_pred = consistency_output(noisy, x0_of(pred_eps, start_t, noisy), c_skip_s, c_out_s)
        with torch.no_grad():
            both = teacher(torch.cat([noisy, noisy]), torch.cat([start_t, start_t]),
                           torch.cat([cond, uncond.expand(bs, -1, -1)])).sample
            c_eps, u_eps = both.chunk(2)
            c_x0, u_x0 = x0_of(c_eps, start_t, noisy), x0_of(u_eps, start_t, noisy)
            pred_x0 = c_x0 + w * (c_x0 - u_x0)
            pred_noise = c_eps + w * (c_eps - u_eps)
            x_prev = solver.ddim_step(pred_x0, pred_noise, index)
            target_eps = student(x_prev, t, cond).sample
            target = consistency_output(x_prev, x0_of(target_eps, t, x_prev), c_skip, c_out)
        loss = F.mse_loss(model_pred, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        return {"loss": float(loss.detach())}

    student.train()
    step = train_loop(sdir, "lcm", budget, step, train_step, ckpt, args.log_every, fmt=".5f")
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
