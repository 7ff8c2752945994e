"""`cxr-export train-classifier`: trains a small Vision Transformer (transformers ViTForImageClassification) on the
Kermany TRAIN split only. A stratified validation set (--val-frac, seeded) is carved out of train; the epoch
(checkpoint), the EMA-or-raw choice and the decision threshold (max Youden J) are all chosen on val. The test split is
never read by training.

Writes (atomically) into --out (default export-scripts/runs/pneumonia-vit):
  checkpoint/        save_pretrained model + preprocessor_config.json (the best val epoch)
  log.jsonl          one line per epoch: train loss, val loss/AUC/accuracy/F1, seconds
  summary.json       config, seed, chosen epoch, val metrics, threshold, wall time, command

--export-id ID additionally exports the checkpoint to <--models-dir>/ID (fp32 + int8), evaluates both on the test
split with ONNX Runtime into the card, and regenerates tests/goldens/ID/test-images.json
(see cxr_export.classifier.publish).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from .errors import ExportError
from .vit import (DEFAULT_ARCH, LABELS, MEAN, STD, binary_metrics, ece, roc_auc,  # noqa: F401  (re-exported)
                  vit_config, youden_threshold)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------------------------
# Model and data
# ---------------------------------------------------------------------------------------------------------------


def image_processor(size: int):
    from transformers import ViTImageProcessor

    return ViTImageProcessor(do_resize=True, size={"height": size, "width": size}, resample=2, do_rescale=True,
                             rescale_factor=1 / 255, do_normalize=True, image_mean=list(MEAN), image_std=list(STD))


def load_split(root: Path, split: str, size: int, limit_per_class: int | None = None):
    """(uint8 images [N,S,S,3], labels int64 [N], paths) of root/<split>/<label>/ with labels in LABELS order."""
    from . import data as D

    items = D.kermany_split(root, split)
    unknown = sorted({lab for _, lab in items} - set(LABELS))
    if unknown:
        raise ExportError(f"{root}/{split}: unexpected class folders {unknown}; expected {LABELS}")
    if limit_per_class:
        kept, seen = [], {}
        for p, lab in items:
            if seen.get(lab, 0) < limit_per_class:
                kept.append((p, lab))
                seen[lab] = seen.get(lab, 0) + 1
        items = kept
    paths = [p for p, _ in items]
    y = np.array([LABELS.index(lab) for _, lab in items], dtype=np.int64)
    return D.load_images(paths, size), y, paths


def to_tensor(u8: np.ndarray):
    """uint8 [B,H,W,3] -> normalized float [B,3,H,W] with MEAN/STD."""
    import torch

    x = torch.from_numpy(u8).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x, gen):
    """Batched light augmentation on normalized [B,3,H,W]: random zoom/crop (scale 0.8-1.1 of the view, aspect
    +-10%), rotation +-10 deg, shift +-8%, brightness/contrast +-10%. One affine grid_sample per batch."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]

    def u(lo, hi):
        return torch.rand(b, generator=gen) * (hi - lo) + lo

    scale = u(0.8, 1.1)
    aspect = torch.exp(u(-0.1, 0.1))
    ang = u(-10, 10) * math.pi / 180
    tx, ty = u(-0.08, 0.08), u(-0.08, 0.08)
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.stack([torch.stack([cos * sx, -sin * sy, tx], 1), torch.stack([sin * sx, cos * sy, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = u(0.9, 1.1).view(b, 1, 1, 1)
    br = u(-0.1, 0.1).view(b, 1, 1, 1)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * c + m + br


def predict(model, u8: np.ndarray, batch: int = 128):
    """softmax probabilities [N,C] and mean CE loss-free logits, eval mode, no grad."""
    import torch

    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(u8), batch):
            out.append(model(pixel_values=to_tensor(u8[i:i + batch]).to(dev)).logits.float().cpu())
    logits = torch.cat(out)
    return logits.softmax(-1).numpy(), logits.numpy()


# ---------------------------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------------------------


def train(args: argparse.Namespace) -> dict:
    import copy

    import torch
    from transformers import ViTForImageClassification

    from . import data as D
    from .onnx_utils import atomic_dir, device

    t0 = time.time()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = device()
    root = Path(args.data)
    if not (root / "train").is_dir():
        raise ExportError(f"--data {root}: expected a train/<label>/ folder (e.g. ../shared/data/kermany-cxr-224)")
    arch = dict(image_size=args.image_size, patch_size=args.patch_size, hidden_size=args.hidden,
                num_hidden_layers=args.layers, num_attention_heads=args.heads, intermediate_size=args.mlp)
    if args.image_size % args.patch_size or args.hidden % args.heads:
        raise ExportError("--image-size must be a multiple of --patch-size and --hidden of --heads")
    images, y, paths = load_split(root, "train", args.image_size, args.limit_per_class)
    tr_idx, va_idx = D.stratified_split(y, args.val_frac, args.seed)
    x_tr, y_tr, x_va, y_va = images[tr_idx], y[tr_idx], images[va_idx], y[va_idx]
    print(f"loaded {len(y)} train images in {time.time() - t0:.1f}s: {len(y_tr)} train / {len(y_va)} val "
          f"(val pneumonia {int(y_va.sum())}, normal {int((y_va == 0).sum())})", flush=True)

    config = vit_config(**arch)
    model = ViTForImageClassification(config).to(dev)
    n_params = sum(p.numel() for p in model.parameters())
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    counts = np.bincount(y_tr, minlength=len(LABELS)).astype(np.float64)
    weights = torch.tensor(counts.sum() / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32, device=dev)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=args.label_smoothing)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.999))
    steps_per_epoch = max(1, len(y_tr) // args.batch_size)
    total = steps_per_epoch * args.epochs if not args.max_steps else args.max_steps
    warm = min(args.warmup_steps if args.warmup_steps is not None else steps_per_epoch, max(1, total // 5))

    budget_s = args.time_budget_min * 60.0 if args.time_budget_min else None
    t_train = time.time()

    def progress(step):
        """fraction of the schedule done: by steps, or by wall time under --time-budget-min (whichever is ahead)."""
        p = (step - warm) / max(1, total - warm)
        if budget_s:
            p = max(p, (time.time() - t_train) / budget_s)
        return min(1.0, max(0.0, p))

    def lr_at(step):
        if step < warm:
            return args.lr * (step + 1) / warm
        return args.lr * 0.5 * (1 + math.cos(math.pi * progress(step)))

    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    log, step, best, stopped_early, budget_done = [], 0, None, None, False
    first_losses, last_losses = [], []
    out = Path(args.out)
    with atomic_dir(out) as tmp:
        logf = open(tmp / "log.jsonl", "w")
        for epoch in range(1, args.epochs + 1):
            model.train()
            te = time.time()
            perm = rng.permutation(len(y_tr))
            losses = []
            for b in range(steps_per_epoch):
                if args.max_steps and step >= args.max_steps:
                    break
                if budget_s and step >= warm and progress(step) >= 1.0:
                    budget_done = True
                    break
                idx = np.sort(perm[b * args.batch_size:(b + 1) * args.batch_size])
                xb = augment(to_tensor(x_tr[idx]), gen).to(dev)
                yb = torch.from_numpy(y_tr[idx]).to(dev)
                for g in opt.param_groups:
                    g["lr"] = lr_at(step)
                loss = loss_fn(model(pixel_values=xb).logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                d = min(args.ema, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                step += 1
                losses.append(loss.item())
                if len(first_losses) < 5:
                    first_losses.append(loss.item())
                if args.benchmark and step == args.benchmark:
                    dt = (time.time() - te) / step
                    print(f"benchmark: {dt:.3f} s/step, batch {args.batch_size}, {steps_per_epoch} steps/epoch "
                          f"-> {dt * steps_per_epoch:.0f} s/epoch (+ val), {n_params / 1e6:.2f}M params", flush=True)
                    raise SystemExit(0)
            last_losses = losses[-5:] or last_losses
            train_s = time.time() - te
            rec = {"epoch": epoch, "step": step, "lr": lr_at(step), "train_loss": float(np.mean(losses)) if losses
                   else float("nan"), "train_s": round(train_s, 1)}
            for tag, m in (("raw", model), ("ema", ema)):
                probs, logits = predict(m, x_va)
                vl = float(torch.nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(y_va)))
                met = binary_metrics(y_va, probs[:, 1], 0.5)
                rec[tag] = {"val_loss": vl, "val_auc": met["auc"], "val_accuracy": met["accuracy"],
                            "val_f1": met["f1"]}
                key = (met["auc"], -vl)
                if best is None or key > best["key"]:
                    best = {"key": key, "epoch": epoch, "which": tag, "state": copy.deepcopy(m.state_dict()),
                            "probs": probs}
            rec["epoch_s"] = round(time.time() - te, 1)
            log.append(rec)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            print(json.dumps(rec), flush=True)
            if args.max_steps and step >= args.max_steps:
                break
            if budget_done:
                print(f"time budget of {args.time_budget_min} min (cosine schedule over wall time) used up in epoch "
                      f"{epoch} at step {step}", flush=True)
                break
            if args.max_minutes and (time.time() - t0) / 60.0 > args.max_minutes and epoch < args.epochs:
                print(f"time budget of {args.max_minutes} min reached after epoch {epoch}; keeping the best val "
                      "checkpoint so far", flush=True)
                stopped_early = epoch
                break
        logf.close()
        model.load_state_dict(best["state"])
        model.eval()
        thr = youden_threshold(y_va, best["probs"][:, 1])
        val = binary_metrics(y_va, best["probs"][:, 1], thr)
        ckpt = tmp / "checkpoint"
        model.save_pretrained(ckpt)
        image_processor(args.image_size).save_pretrained(ckpt)
        summary = {
            "arch": {**arch, "params": n_params}, "seed": args.seed, "epochs": len(log),
            "steps": step, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing, "ema": args.ema, "loss": "class-weighted cross-entropy",
            "val_frac": args.val_frac, "n_train": int(len(y_tr)), "n_val": int(len(y_va)),
            "planned_epochs": args.epochs, "time_budget_min": args.time_budget_min, "stopped_early_after_epoch": stopped_early,
            "best_epoch": best["epoch"], "best_weights": best["which"], "threshold": thr,
            "threshold_rule": "max Youden J on val", "val_metrics": val,
            "seconds_per_epoch": round(float(np.mean([r["epoch_s"] for r in log])), 1),
            "wall_time_s": round(time.time() - t0, 1), "device": str(dev),
            "first_losses": first_losses, "last_losses": last_losses,
            "command": "cxr-export " + " ".join(sys.argv[1:]) if sys.argv and "pytest" not in sys.argv[0] else "",
            "data": str(root),
        }
        with open(tmp / "summary.json", "w") as fh:
            json.dump(summary, fh, indent=2)
            fh.write("\n")
    print(json.dumps({k: summary[k] for k in ("best_epoch", "best_weights", "threshold", "val_metrics",
                                              "wall_time_s")}), flush=True)
    return summary


def run(args: argparse.Namespace) -> dict:
    summary = train(args)
    if args.export_id:
        from .classifier import publish

        publish(Path(args.out), args.models_dir, args.export_id, Path(args.data), goldens_dir=args.goldens_dir)
    return summary


def register(subparsers) -> None:
    from .data import shared_dir

    p = subparsers.add_parser("train-classifier", help="train the small pneumonia ViT on Kermany train (val carved out)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=shared_dir() / "data" / "kermany-cxr-224",
                   help="folder with train/<label>/ (default ../shared/data/kermany-cxr-224)")
    p.add_argument("--out", type=Path, default=repo_root() / "export-scripts" / "runs" / "pneumonia-vit")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup-steps", type=int, default=None, help="default: one epoch")
    p.add_argument("--label-smoothing", type=float, default=0.1)
    p.add_argument("--ema", type=float, default=0.998, help="EMA decay of the weights evaluated beside the raw ones")
    p.add_argument("--val-frac", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--image-size", type=int, default=DEFAULT_ARCH["image_size"])
    p.add_argument("--patch-size", type=int, default=DEFAULT_ARCH["patch_size"])
    p.add_argument("--hidden", type=int, default=DEFAULT_ARCH["hidden_size"])
    p.add_argument("--layers", type=int, default=DEFAULT_ARCH["num_hidden_layers"])
    p.add_argument("--heads", type=int, default=DEFAULT_ARCH["num_attention_heads"])
    p.add_argument("--mlp", type=int, default=DEFAULT_ARCH["intermediate_size"])
    p.add_argument("--time-budget-min", type=float, default=None,
                   help="run the cosine LR schedule over this much training wall time (or --epochs, whichever ends "
                        "first) and stop when it is done; the schedule then depends on the machine's speed")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="wall-time budget: stop after the epoch that passes it (best val checkpoint kept)")
    p.add_argument("--threads", type=int, default=int(os.environ.get("CXR_TORCH_THREADS", "2")))
    p.add_argument("--limit-per-class", type=int, default=None, help="use only the first N train images per class")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (smoke tests)")
    p.add_argument("--benchmark", type=int, default=0, help="time N steps, print s/epoch and exit")
    p.add_argument("--export-id", default=None, help="after training, export/evaluate/quantize as this model id")
    p.add_argument("--models-dir", type=Path, default=repo_root() / "public" / "models")
    p.add_argument("--goldens-dir", type=Path, default=None,
                   help="default tests/goldens/<export-id> (only with --export-id)")
    p.set_defaults(func=run)
