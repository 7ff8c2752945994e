"""The project's own promptable lung segmenter, with SAM's ONNX interface: data, model, prompts, loss, training loop
(the CLI is train_segmenter.py, export and evaluation segmenter_eval.py). This module holds the training loop and
re-exports the parts: lung_segmenter_data.py, lung_segmenter_model.py, lung_segmenter_prompts.py,
lung_segmenter_loss.py.

The model is SAM-shaped so the app's segment family runs it like any other `cxr-export sam` export:
  image_encoder.onnx   pixel_values float32 [1,3,256,256] (longest side resized to 256, ImageNet mean/std on the
                       grey value replicated to RGB, zero padding bottom-right after normalisation)
                       -> image_embeddings [1,C,64,64]
  prompt_decoder.onnx  image_embeddings, point_coords [1,N,2] (pixels of the 256 x 256 frame), point_labels [1,N]
                       (1 fg, 0 bg, -1 padding, 2/3 box corners), mask_input [1,1,256,256], has_mask_input [1]
                       -> masks_low_res [1,3,256,256] logits, iou_predictions [1,3]
The image encoder is a small residual CNN with a feature pyramid (stride 4 output, so the low-res masks are
256 x 256 like SAM's); the prompt encoder and mask decoder are transformers' SamPromptEncoder / SamMaskDecoder
(Kirillov et al., "Segment Anything", ICCV 2023) at width C, driven through the same adapter as the exports in
sam.py, so training, export and the app see one prompt convention (segment_anything/utils/onnx.py).

Data: ../shared/data/cxr-lung-masks (images/, masks/*_mask.png with 255 lung, 127 ignore, 0 background,
boxes.json with right_lung / left_lung boxes). Each lung is its own target: a lung pixel belongs to the lung whose
radiologist box holds it (pixels in both or neither boxes: the box whose centre is nearer in x). Split: seeded,
by source (figures of one paper or case stay on one side), >= 20% of the images held out for evaluation only.
Label 127 is ignored in the loss and in every metric. Training prompts: the radiologists' boxes, jittered boxes,
centre clicks, random positive/negative clicks, box + clicks, and a second refinement pass with the previous
low-res mask as mask_input plus a corrective click (as SAM's interactive training does).

Reproducible: every random draw comes from numpy Generators seeded by (seed, step), so a resumed run draws what
an uninterrupted one would; the learning-rate schedule is over --steps, --time-budget-min only stops early (the
next call resumes from the checkpoint in --run-dir).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .errors import ExportError
from .lung_segmenter_data import (
    IMAGENET_MEAN, IMAGENET_STD, LUNGS, IGNORE, repo_root, default_data_dir, preprocess_shape, to_frame, normalize,
    split_lungs, source_group, load_dataset, split_indices,
)
from .lung_segmenter_model import DEFAULT_ARCH, TINY_ARCH, build_model, PromptMapDecoder, modules_of
from .lung_segmenter_prompts import (
    LAYOUTS, FINETUNE_LAYOUTS, augment_batch, jitter_box, sample_prompts, corrective_click, insert_click,
)
from .lung_segmenter_loss import mask_losses, mask_iou, dice_iou, summarize


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return base * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def training_step(adapter, data, idx, rng, size: int, refine_p: float = 0.2, aug: float = 1.0, aux_w: float = 0.5,
                  layouts=LAYOUTS):
    """One step on images idx, both lungs of each. Returns (loss tensor, stats dict)."""
    import torch

    frames = data["frames"][idx]
    pix, tg, wg, boxes = augment_batch(rng, frames, data["hw"][idx], data["targets"][idx], data["weights"][idx],
                                       data["boxes"][idx], size, aug)
    names = [n for n, _ in layouts]
    probs = np.array([p for _, p in layouts])
    layout = names[rng.choice(len(names), p=probs / probs.sum())]
    n_clicks = int(rng.integers(1, 4)) if layout == "clicks" else int(rng.integers(1, 3))
    emb = adapter.encoder(pix)
    b = len(idx)
    tgt = tg.reshape(b * 2, size, size)
    wgt = wg.repeat_interleave(2, 0)
    tgt_np, wgt_np = tgt.numpy(), wgt.numpy()
    coords, labels = [], []
    for j in range(b * 2):
        c, lb = sample_prompts(rng, layout, tgt_np[j], wgt_np[j], boxes[j // 2, j % 2], size, n_clicks)
        coords.append(c)
        labels.append(lb)
    e = emb.repeat_interleave(2, 0)
    m = adapter.model.config.prompt_encoder_config.image_embedding_size * 4
    no_mask = torch.zeros(b * 2, 1, m, m)
    masks, iou_pred = adapter.decoder(e, torch.from_numpy(np.stack(coords)), torch.from_numpy(np.stack(labels)),
                                      no_mask, torch.zeros(b * 2))
    loss, stats = _prompt_loss(masks, iou_pred, tgt, wgt)
    # auxiliary: both lungs from the embedding at its own resolution (encoder only; not exported)
    stride = size // emb.shape[-1]
    lungs = torch.nn.functional.avg_pool2d(tg.amax(1, keepdim=True), stride)
    w_aux = torch.nn.functional.avg_pool2d(wg.unsqueeze(1), stride)
    aux = (torch.nn.functional.binary_cross_entropy_with_logits(adapter.aux(emb), lungs, reduction="none")
           * w_aux).sum() / w_aux.sum().clamp(min=1)
    stats["aux_loss"] = float(aux.detach())
    if rng.uniform() < refine_p:
        # second interaction: previous best low-res logits as mask_input + a corrective click
        best = masks.detach()[torch.arange(b * 2), iou_pred.detach().argmax(1)]
        best_np = best.numpy()
        c2, l2 = [], []
        for j in range(b * 2):
            xy, lab = corrective_click(rng, best_np[j], tgt_np[j], wgt_np[j])
            c, lb = insert_click(coords[j], labels[j], np.clip(xy, 0, size - 1), lab)
            c2.append(c)
            l2.append(lb)
        masks2, iou2 = adapter.decoder(e, torch.from_numpy(np.stack(c2)), torch.from_numpy(np.stack(l2)),
                                       best.unsqueeze(1), torch.ones(b * 2))
        loss2, stats2 = _prompt_loss(masks2, iou2, tgt, wgt)
        loss = 0.5 * (loss + loss2)
        stats["refine_dice_loss"] = stats2["mask_loss"]
    stats["layout"] = layout
    return loss + aux_w * aux, stats


def _prompt_loss(masks, iou_pred, tgt, wgt):
    import torch

    per = mask_losses(masks, tgt, wgt)  # [P,3]
    best = per.min(1).values
    with torch.no_grad():
        iou_t = mask_iou(masks, tgt, wgt)
    iou_loss = ((iou_pred - iou_t) ** 2).mean()
    loss = best.mean() + 0.2 * per.mean() + iou_loss
    return loss, {"mask_loss": float(best.mean().detach()), "iou_loss": float(iou_loss.detach())}


def save_checkpoint(path: Path, adapter, opt, step: int, meta: dict) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": modules_of(adapter).state_dict(), "opt": opt.state_dict(), "step": step, "meta": meta}, tmp)
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> dict:
    """Trains (or resumes) until --steps or --time-budget-min. Returns the run summary (also run_dir/train.json)."""
    import torch

    torch.set_num_threads(max(1, int(args.threads)))
    arch = dict(TINY_ARCH if args.tiny else DEFAULT_ARCH)
    size = arch["image_size"]
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    data = load_dataset(Path(args.data), size, limit=args.limit_images,
                        cache=None if args.limit_images else run_dir / f"data-{size}.npz")
    tr, ev = split_indices(data["groups"], args.seed, args.holdout)
    adapter, info = build_model(arch, args.seed)
    mods = modules_of(adapter)
    params = [p for p in mods.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    ckpt = run_dir / "checkpoint.pt"
    step = 0
    log_path = run_dir / "train_log.jsonl"
    ft_steps = int(getattr(args, "finetune_steps", 0) or 0)
    total = args.steps + ft_steps
    meta = {"arch": arch, "seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
            "finetune_steps": ft_steps, "finetune_lr": float(getattr(args, "finetune_lr", 0.0) or 0.0),
            "holdout": args.holdout, "n_train": int(len(tr)), "n_eval": int(len(ev)),
            "eval_names": [str(data["names"][i]) for i in ev]}
    elapsed_before = 0.0
    if ckpt.exists() and not args.restart:
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        if state["meta"]["arch"] != arch or state["meta"]["seed"] != args.seed:
            raise ExportError(f"{ckpt}: checkpoint of another arch/seed; use --restart or another --run-dir")
        mods.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = int(state["step"])
        elapsed_before = float(state["meta"].get("train_seconds", 0.0))
        print(f"resumed from {ckpt} at step {step}", flush=True)
    elif args.restart and log_path.exists():
        log_path.unlink()
    mods.train()
    t0 = time.time()
    budget = args.time_budget_min * 60 if args.time_budget_min else float("inf")
    n_params = sum(p.numel() for p in mods.parameters())
    print(json.dumps({"params": n_params, "n_train": len(tr), "n_eval": len(ev), "start_step": step,
                      "steps": total}), flush=True)
    losses = []
    with open(log_path, "a") as log:
        stop_at = total if not getattr(args, "stop_after", None) else min(total, step + args.stop_after)
        while step < stop_at and time.time() - t0 < budget:
            rng = np.random.default_rng([args.seed, step])
            idx = tr[rng.choice(len(tr), size=min(args.batch, len(tr)), replace=False)]
            for g in opt.param_groups:
                g["lr"] = (lr_at(step, args.steps, args.lr, args.warmup) if step < args.steps else
                           lr_at(step - args.steps, ft_steps, args.finetune_lr, 10))
            loss, stats = training_step(adapter, data, idx, rng, size, aug=args.aug,
                                        layouts=LAYOUTS if step < args.steps else FINETUNE_LAYOUTS)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            step += 1
            losses.append(float(loss.detach()))
            rec = {"step": step, "loss": round(losses[-1], 5), **stats,
                   "t": round(elapsed_before + time.time() - t0, 1)}
            log.write(json.dumps(rec) + "\n")
            if step % 20 == 0 or step == total:
                log.flush()
                print(json.dumps(rec), flush=True)
            if step % args.checkpoint_every == 0 and step < total:
                meta["train_seconds"] = elapsed_before + time.time() - t0
                save_checkpoint(ckpt, adapter, opt, step, meta)
    meta["train_seconds"] = elapsed_before + time.time() - t0
    save_checkpoint(ckpt, adapter, opt, step, meta)
    summary = {"step": step, "done": step >= total, "params": n_params,
               "train_seconds": round(meta["train_seconds"], 1), "losses": losses}
    (run_dir / "train.json").write_text(json.dumps({k: v for k, v in summary.items() if k != "losses"}, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "losses"}), flush=True)
    return summary


def load_trained(run_dir: Path):
    """(adapter, info, meta) from run_dir/checkpoint.pt, in eval mode."""
    import torch

    state = torch.load(Path(run_dir) / "checkpoint.pt", map_location="cpu", weights_only=False)
    adapter, info = build_model(state["meta"]["arch"], state["meta"]["seed"])
    modules_of(adapter).load_state_dict(state["model"])
    adapter.encoder.eval()
    adapter.decoder.eval()
    return adapter, info, state["meta"], int(state["step"])
