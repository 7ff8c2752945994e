"""`cxr-export train-classifier`: trains the project's pneumonia classifier on the Kermany TRAIN split only: the app's
small Vision Transformer (transformers ViTForImageClassification, --model vit) or a from-scratch CNN (ResNet, --model
resnet: the distillation teacher and the model card's reference row). A stratified validation set (--val-frac,
seeded) is carved out of train; the epoch (checkpoint), the EMA-or-raw choice, the temperature (--temperature-scaling)
and the decision threshold (max Youden J) are all chosen on val. The test split is never read by training
(--report-test reads it once, after training, for a reference row).

Levers: --teacher DIR (knowledge distillation, soft or hard, the teacher seeing the same augmented batch), --init-from
(a checkpoint folder or an exported ViT .onnx), --temperature-scaling (fitted on val, baked into the last layer).
A teacher or starting run with another validation split is refused (it has seen this run's validation images).

Writes (atomically) into --out (default export-scripts/runs/pneumonia-vit):
  checkpoint/        save_pretrained model + preprocessor_config.json (the best val epoch)
  log.jsonl          one line per epoch: train loss, val loss/AUC/accuracy/F1, seconds
  summary.json       config, seed, chosen epoch, val metrics, threshold, calibration, wall time, command
and, while a run is unfinished, <out>.resume.pt beside it (per epoch; the same command resumes from it).

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


def resnet_config(widths: list[int], depths: list[int], labels=LABELS):
    """A from-scratch ResNet (transformers ResNetConfig, basic blocks; ResNet-18 is widths 64,128,256,512 and depths
    2,2,2,2): the CNN teacher and the CNN reference row of the model card (He et al., CVPR 2016)."""
    from transformers import ResNetConfig

    return ResNetConfig(num_channels=3, embedding_size=widths[0], hidden_sizes=list(widths), depths=list(depths),
                        layer_type="basic", hidden_act="relu", downsample_in_first_stage=False,
                        id2label={i: lab for i, lab in enumerate(labels)},
                        label2id={lab: i for i, lab in enumerate(labels)})


def build_model(args: argparse.Namespace):
    """(model, arch dict) for --model vit|resnet with the CLI's architecture flags."""
    from transformers import ResNetForImageClassification, ViTForImageClassification

    if args.model == "resnet":
        widths = [int(v) for v in args.resnet_widths.split(",")]
        depths = [int(v) for v in args.resnet_depths.split(",")]
        if len(widths) != len(depths):
            raise ExportError("--resnet-widths and --resnet-depths need the same number of stages")
        arch = dict(model="resnet", image_size=args.image_size, widths=widths, depths=depths)
        return ResNetForImageClassification(resnet_config(widths, depths)), arch
    arch = dict(image_size=args.image_size, patch_size=args.patch_size, hidden_size=args.hidden,
                num_hidden_layers=args.layers, num_attention_heads=args.heads, intermediate_size=args.mlp)
    if args.image_size % args.patch_size or args.hidden % args.heads:
        raise ExportError("--image-size must be a multiple of --patch-size and --hidden of --heads")
    return ViTForImageClassification(vit_config(**arch)), arch


def init_weights(model, path: Path) -> str:
    """Load the starting weights of --init-from into model (same architecture): a save_pretrained checkpoint folder,
    or an exported ViT classifier .onnx whose PyTorch module is rebuilt from the graph and checked against ONNX
    Runtime first (cxr_export.recover). Returns a description for summary.json."""
    from transformers import AutoModelForImageClassification

    path = Path(path)
    if path.suffix == ".onnx":
        from .recover import checked_vit_from_onnx

        cfg = model.config
        arch = dict(image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.hidden_size,
                    num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                    intermediate_size=cfg.intermediate_size)
        src, diff = checked_vit_from_onnx(path, arch, LABELS)
        how = f"{path} (rebuilt from the graph, max |ONNX Runtime - PyTorch| {diff:.1e})"
    elif (path / "config.json").is_file():
        src = AutoModelForImageClassification.from_pretrained(path)
        how = str(path)
    else:
        raise ExportError(f"--init-from {path}: neither an .onnx file nor a checkpoint folder with config.json")
    missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    if missing or unexpected:
        raise ExportError(f"--init-from {path}: architecture differs (missing {list(missing)[:3]}, unexpected "
                          f"{list(unexpected)[:3]})")
    return how


def load_teacher(path: Path):
    """(teacher, input size in px): a train-classifier checkpoint folder (save_pretrained: any transformers image
    classifier with our LABELS, its size from preprocessor_config.json) in eval mode with frozen weights."""
    from transformers import AutoModelForImageClassification

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(f"--teacher {path}: no config.json (expected a train-classifier run's checkpoint/ folder)")
    teacher = AutoModelForImageClassification.from_pretrained(path).eval()
    got = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    if got != list(LABELS):
        raise ExportError(f"--teacher {path}: labels {got}, expected {LABELS}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    pre = path / "preprocessor_config.json"
    size = int(json.loads(pre.read_text())["size"]["height"]) if pre.is_file() else None
    return teacher, size


def distillation_loss(student_logits, teacher_logits, labels, ce, alpha: float, tau: float, kind: str):
    """(1 - alpha) * CE(student, labels) + alpha * distillation term.

    soft: tau^2 * KL(softmax(t / tau) || softmax(s / tau)) (Hinton et al. 2015, "Distilling the knowledge in a neural
    network"); hard: CE(student, argmax teacher), which DeiT found better with a convnet teacher (Touvron et al.,
    ICML 2021, section 5.1). Logits [B, C], labels [B] int64."""
    import torch.nn.functional as F

    base = ce(student_logits, labels)
    if kind == "hard":
        kd = F.cross_entropy(student_logits, teacher_logits.argmax(-1))
    else:
        kd = F.kl_div(F.log_softmax(student_logits / tau, -1), F.log_softmax(teacher_logits / tau, -1),
                      reduction="batchmean", log_target=True) * tau * tau
    return (1 - alpha) * base + alpha * kd


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of softmax(logits / T) on held-out logits [N, C] (Guo et al., ICML 2017,
    "On calibration of modern neural networks"). A 1-D search over log T (golden section on [-3, 3]) is exact
    enough and has no optimiser state."""
    import torch
    import torch.nn.functional as F

    lt, yt = torch.from_numpy(logits).double(), torch.from_numpy(y)

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(lt / math.exp(log_t), yt))

    lo, hi, g = -3.0, 3.0, (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(80):
        if nll(a) < nll(b):
            hi, b = b, a
            a = hi - g * (hi - lo)
        else:
            lo, a = a, b
            b = lo + g * (hi - lo)
    return math.exp((lo + hi) / 2)


def bake_temperature(model, t: float) -> None:
    """Divide the final classification layer's weight and bias by T, so that the exported graph's logits are the
    calibrated logits / T and nothing downstream (ONNX, app, OOD, heatmaps) changes shape or code."""
    import torch

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == len(LABELS)][-1]
    with torch.no_grad():
        last.weight.div_(t)
        if last.bias is not None:
            last.bias.div_(t)


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
    """(softmax probabilities [N,C], logits [N,C]) of uint8 images [N,S,S,3], eval mode, no grad."""
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


def check_same_split(args: argparse.Namespace) -> None:
    """A teacher or starting checkpoint trained with another validation split has seen this run's validation images,
    which would then judge nothing: refuse it. The split is a function of (--seed, --val-frac, --data, --limit-per-
    class) (data.stratified_split); a checkpoint's run folder records them in summary.json."""
    for flag, ck in (("--teacher", args.teacher), ("--init-from", args.init_from)):
        if not ck or Path(ck).suffix == ".onnx":
            continue
        summary = Path(ck).parent / "summary.json"
        if not summary.is_file():
            continue
        s = json.loads(summary.read_text())
        theirs = (s.get("seed"), s.get("val_frac"))
        if theirs != (args.seed, args.val_frac):
            raise ExportError(f"{flag} {ck} was trained with --seed {theirs[0]} --val-frac {theirs[1]}, this run uses "
                              f"--seed {args.seed} --val-frac {args.val_frac}: another validation split, so it has "
                              "seen this run's validation images; use the same --seed and --val-frac")


def _fingerprint(args: argparse.Namespace) -> dict:
    """The arguments a resumed run must share with the run that wrote the resume state."""
    keys = ("model", "image_size", "patch_size", "hidden", "layers", "heads", "mlp", "resnet_widths", "resnet_depths",
            "batch_size", "lr", "weight_decay", "label_smoothing", "ema", "val_frac", "seed", "epochs",
            "time_budget_min", "limit_per_class", "teacher", "init_from", "distill", "distill_alpha", "distill_tau")
    return {k: str(getattr(args, k, None)) for k in keys}


def resume_path(out: Path) -> Path:
    """Where an unfinished run keeps its per-epoch state (beside --out, so the atomic output folder stays whole)."""
    out = Path(out)
    return out.with_name(out.name + ".resume.pt")


def train(args: argparse.Namespace) -> dict:
    import copy

    import torch

    from . import data as D
    from .onnx_utils import atomic_dir, device
    from .common import load_ckpt, save_ckpt

    t0 = time.time()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    dev = device()
    root = Path(args.data)
    if not (root / "train").is_dir():
        raise ExportError(f"--data {root}: expected a train/<label>/ folder (e.g. ../shared/data/kermany-cxr-224)")
    check_same_split(args)
    model, arch = build_model(args)
    init_from = init_weights(model, args.init_from) if args.init_from else None
    model = model.to(dev)
    teacher, teacher_size = load_teacher(args.teacher) if args.teacher else (None, None)
    if teacher is not None:
        teacher = teacher.to(dev)
    images, y, paths = load_split(root, "train", args.image_size, args.limit_per_class)
    tr_idx, va_idx = D.stratified_split(y, args.val_frac, args.seed)
    x_tr, y_tr, x_va, y_va = images[tr_idx], y[tr_idx], images[va_idx], y[va_idx]
    print(f"loaded {len(y)} train images in {time.time() - t0:.1f}s: {len(y_tr)} train / {len(y_va)} val "
          f"(val pneumonia {int(y_va.sum())}, normal {int((y_va == 0).sum())})", flush=True)

    n_params = sum(p.numel() for p in model.parameters())
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    counts = np.bincount(y_tr, minlength=len(LABELS)).astype(np.float64)
    weights = torch.tensor(counts.sum() / (len(LABELS) * np.maximum(counts, 1)), dtype=torch.float32, device=dev)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights, label_smoothing=args.label_smoothing)
    # No weight decay on biases, norms and embeddings (positions, CLS): the usual ViT/ResNet recipe.
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embeddings" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.999))
    steps_per_epoch = max(1, len(y_tr) // args.batch_size)
    total = steps_per_epoch * args.epochs if not args.max_steps else args.max_steps
    warm = min(args.warmup_steps if args.warmup_steps is not None else steps_per_epoch, max(1, total // 5))

    budget_s = args.time_budget_min * 60.0 if args.time_budget_min else None
    gen = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    log, step, best, stopped_early, budget_done = [], 0, None, None, False
    first_losses, last_losses, start_epoch, elapsed_before = [], [], 1, 0.0
    out = Path(args.out)
    state_file = resume_path(out)
    state = load_ckpt(state_file) if not args.no_resume else None
    if state is not None:
        if state["fingerprint"] != _fingerprint(args):
            diff = sorted(k for k in state["fingerprint"] if state["fingerprint"][k] != _fingerprint(args).get(k))
            raise ExportError(f"{state_file} was written by a run with other arguments ({', '.join(diff)}); "
                              "delete it, pass --no-resume, or use another --out")
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        gen.set_state(state["gen"])
        rng.bit_generator.state = state["rng"]
        log, step, best = state["log"], state["step"], state["best"]
        first_losses, last_losses = state["first_losses"], state["last_losses"]
        start_epoch, elapsed_before = state["epoch"] + 1, state["train_elapsed_s"]
        budget_done = state.get("budget_done", False)
        print(f"resuming from {state_file}: epoch {state['epoch']} done, step {step}, "
              f"{elapsed_before / 60:.1f} min of training so far", flush=True)
    t_train = time.time() - elapsed_before

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

    with atomic_dir(out) as tmp:
        logf = open(tmp / "log.jsonl", "w")
        for rec in log:
            logf.write(json.dumps(rec) + "\n")
        for epoch in range(start_epoch, args.epochs + 1):
            if budget_done or (args.max_steps and step >= args.max_steps):
                break
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
                logits = model(pixel_values=xb).logits
                if teacher is not None:
                    # The teacher sees the same augmented batch as the student (DeiT's online distillation).
                    with torch.no_grad():
                        xt = xb if teacher_size in (None, args.image_size) else torch.nn.functional.interpolate(
                            xb, size=(teacher_size, teacher_size), mode="bilinear", antialias=True,
                            align_corners=False)
                        t_logits = teacher(pixel_values=xt).logits
                    loss = distillation_loss(logits, t_logits, yb, loss_fn, args.distill_alpha, args.distill_tau,
                                             args.distill)
                else:
                    loss = loss_fn(logits, yb)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                d = min(args.ema, (1 + step) / (10 + step))
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.mul_(d).add_(pm.detach(), alpha=1 - d)
                    # BatchNorm running statistics are buffers, not parameters: the EMA model takes the live ones.
                    for be, bm in zip(ema.buffers(), model.buffers()):
                        be.copy_(bm)
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
                            "probs": probs, "logits": logits}
            rec["epoch_s"] = round(time.time() - te, 1)
            log.append(rec)
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            print(json.dumps(rec), flush=True)
            save_ckpt(state_file, {"fingerprint": _fingerprint(args), "model": model.state_dict(),
                                   "ema": ema.state_dict(), "opt": opt.state_dict(), "gen": gen.get_state(),
                                   "rng": rng.bit_generator.state, "log": log, "step": step, "best": best,
                                   "first_losses": first_losses, "last_losses": last_losses, "epoch": epoch,
                                   "train_elapsed_s": time.time() - t_train, "budget_done": budget_done})
            if args.max_steps and step >= args.max_steps:
                break
            if budget_done:
                print(f"time budget of {args.time_budget_min} min (cosine schedule over wall time) used up in epoch "
                      f"{epoch} at step {step}", flush=True)
                break
            if args.max_minutes is not None and (time.time() - t0) / 60.0 > args.max_minutes and epoch < args.epochs:
                print(f"this call's budget of {args.max_minutes} min reached after epoch {epoch}; the same command "
                      "resumes from here", flush=True)
                stopped_early = epoch
                break
        logf.close()
        if stopped_early:
            raise SystemExit(3)  # atomic_dir keeps nothing; the resume state is kept
        model.load_state_dict(best["state"])
        model.eval()
        calibration = None
        if args.temperature_scaling:
            # Guo et al. 2017: one scalar fitted on val logits; it changes no ranking (AUC) but the probabilities
            # and so the Youden threshold, which is chosen after it on the calibrated val probabilities.
            t_fit = fit_temperature(best["logits"], y_va)
            ece_before = ece(y_va, best["probs"][:, 1])
            bake_temperature(model, t_fit)
            best["probs"], _ = predict(model, x_va)
            calibration = {"temperature": t_fit, "val_ece_before": ece_before,
                           "val_ece_after": ece(y_va, best["probs"][:, 1]),
                           "how": "final layer's weight and bias divided by T (Guo et al. 2017), fitted on val NLL"}
            print(f"temperature scaling on val: T = {t_fit:.3f}, ECE {ece_before:.4f} -> "
                  f"{calibration['val_ece_after']:.4f}", flush=True)
        thr = youden_threshold(y_va, best["probs"][:, 1])
        val = binary_metrics(y_va, best["probs"][:, 1], thr)
        ckpt = tmp / "checkpoint"
        model.save_pretrained(ckpt)
        image_processor(args.image_size).save_pretrained(ckpt)
        summary = {
            "arch": {**arch, "params": n_params}, "seed": args.seed, "epochs": len(log),
            "steps": step, "batch_size": args.batch_size, "lr": args.lr, "weight_decay": args.weight_decay,
            "label_smoothing": args.label_smoothing, "ema": args.ema, "loss": "class-weighted cross-entropy"
            + (f" + {args.distill} distillation from {args.teacher} (alpha {args.distill_alpha}, tau "
               f"{args.distill_tau})" if teacher is not None else ""),
            "val_frac": args.val_frac, "n_train": int(len(y_tr)), "n_val": int(len(y_va)),
            "planned_epochs": args.epochs, "time_budget_min": args.time_budget_min, "stopped_early_after_epoch": None,
            "best_epoch": best["epoch"], "best_weights": best["which"], "threshold": thr,
            "threshold_rule": "max Youden J on val", "val_metrics": val, "calibration": calibration,
            "seconds_per_epoch": round(float(np.mean([r["epoch_s"] for r in log])), 1),
            "training_time_s": round(time.time() - t_train, 1), "wall_time_s": round(time.time() - t0, 1),
            "resumed": state is not None, "init_from": init_from, "device": str(dev),
            "first_losses": first_losses, "last_losses": last_losses,
            "command": "cxr-export " + " ".join(sys.argv[1:]) if sys.argv and "pytest" not in sys.argv[0] else "",
            "data": str(root),
        }
        if args.report_test:
            # Only for reference rows (the CNN teacher): the final numbers of a model that is not exported. The test
            # split is read here and nowhere in training or selection.
            x_te, y_te, _ = load_split(root, "test", args.image_size)
            p_te, _ = predict(model, x_te)
            summary["test_metrics"] = {**binary_metrics(y_te, p_te[:, 1], thr),
                                       "evaluated_with": "PyTorch, val threshold"}
            print(json.dumps({"test_metrics": summary["test_metrics"]}), flush=True)
        with open(tmp / "summary.json", "w") as fh:
            json.dump(summary, fh, indent=2)
            fh.write("\n")
    if state_file.exists():
        state_file.unlink()
    print(json.dumps({k: summary[k] for k in ("best_epoch", "best_weights", "threshold", "val_metrics",
                                              "calibration", "training_time_s")}), flush=True)
    return summary


def run(args: argparse.Namespace) -> dict:
    summary = train(args)
    if args.export_id:
        from .classifier import publish

        publish(Path(args.out), args.models_dir, args.export_id, Path(args.data), goldens_dir=args.goldens_dir)
    return summary


def register(subparsers) -> None:
    from .data import shared_dir

    p = subparsers.add_parser("train-classifier",
                              help="train the pneumonia ViT (or a CNN teacher) on Kermany train (val carved out)",
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
    p.add_argument("--model", choices=["vit", "resnet"], default="vit",
                   help="vit: the app's classifier; resnet: a CNN (teacher / reference row; not exported by publish)")
    p.add_argument("--resnet-widths", default="32,64,128,256", help="channels per stage (--model resnet)")
    p.add_argument("--resnet-depths", default="2,2,2,2", help="basic blocks per stage (--model resnet)")
    p.add_argument("--teacher", type=Path, default=None,
                   help="checkpoint/ folder of an earlier train-classifier run to distil from")
    p.add_argument("--init-from", type=Path, default=None,
                   help="start from these weights (same architecture): a checkpoint folder or an exported ViT .onnx")
    p.add_argument("--distill", choices=["soft", "hard"], default="soft")
    p.add_argument("--distill-alpha", type=float, default=0.5, help="weight of the distillation term")
    p.add_argument("--distill-tau", type=float, default=2.0, help="softmax temperature of soft distillation")
    p.add_argument("--temperature-scaling", action="store_true",
                   help="fit a temperature on val (NLL) and bake it into the final layer before the threshold")
    p.add_argument("--report-test", action="store_true",
                   help="also evaluate the chosen checkpoint on test (PyTorch) into summary.json: for reference rows")
    p.add_argument("--no-resume", action="store_true", help="ignore an unfinished run's <out>.resume.pt")
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
                   help="this call's wall-time budget: stop after the epoch that passes it; the same command resumes")
    p.add_argument("--threads", type=int, default=int(os.environ.get("CXR_TORCH_THREADS", "2")))
    p.add_argument("--limit-per-class", type=int, default=None, help="use only the first N train images per class")
    p.add_argument("--max-steps", type=int, default=None, help="stop after N optimizer steps (smoke tests)")
    p.add_argument("--benchmark", type=int, default=0, help="time N steps, print s/epoch and exit")
    p.add_argument("--export-id", default=None, help="after training, export/evaluate/quantize as this model id")
    p.add_argument("--models-dir", type=Path, default=repo_root() / "public" / "models")
    p.add_argument("--goldens-dir", type=Path, default=None,
                   help="default tests/goldens/<export-id> (only with --export-id)")
    p.set_defaults(func=run)
