"""The training loop every `cxr-export train-generator` stage shares (vae, vae-decoder, unet, lcm): steps until the
stage's Budget says stop, one JSON line per step in RUN/<stage>/train_log.jsonl, a progress line every --log-every
steps, and a checkpoint every 5 minutes and at the end (so a stopped run resumes where it was)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .common import load_ckpt, save_ckpt
from .gen_data import Budget, _append_log

SAVE_EVERY_S = 300


def resume(sdir: Path, model, opt, gen, strict: bool = True) -> dict | None:
    """Restore `model`, `opt` (its optimiser) and `gen` (its torch.Generator) from sdir/ckpt.pt as train_loop saved
    it, and return the checkpoint dict for the stage's own keys (step, wall_s, ema, ...); None when there is none.
    `strict=False` for a model whose frozen parts are not in the checkpoint."""
    ck = load_ckpt(sdir / "ckpt.pt")
    if ck:
        model.load_state_dict(ck["model"], strict=strict)
        opt.load_state_dict(ck["opt"])
        gen.set_state(ck["gen"])
    return ck


def train_loop(sdir: Path, name: str, budget: Budget, step: int, train_step: Callable[[int], dict],
               ckpt: Callable[[int], dict], log_every: int, show: str = "loss", fmt: str = ".4f") -> int:
    """Run `train_step(step)` (one optimiser step from `step` done steps; returns the step's numbers, e.g.
    {"loss": ...}) while `budget.more()`; log, print and checkpoint (`ckpt(step)` -> the checkpoint dict, saved to
    sdir/ckpt.pt). Returns the step count reached. The final log rows and checkpoint are written before returning."""
    log: list[dict] = []
    last_save = time.time()
    while budget.more():
        row = train_step(step)
        step += 1
        budget.step = step
        log.append({"step": step, **row})
        if log_every and step % log_every == 0:
            print(f"{name} step {step} {show} {np.mean([r[show] for r in log[-log_every:]]):{fmt}} "
                  f"{budget.elapsed():.0f}s", flush=True)
        if time.time() - last_save > SAVE_EVERY_S:
            _append_log(sdir / "train_log.jsonl", log)
            log = []
            save_ckpt(sdir / "ckpt.pt", ckpt(step))
            last_save = time.time()
    _append_log(sdir / "train_log.jsonl", log)
    save_ckpt(sdir / "ckpt.pt", ckpt(step))
    return step
