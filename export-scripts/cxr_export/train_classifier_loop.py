"""Training loop of `cxr-export train-classifier` (train_classifier.py): refuses a teacher or starting checkpoint with
another validation split, fingerprints the run's configuration for resuming, and trains with per-epoch validation,
EMA, checkpoint choice, threshold and calibration on val, writing the run folder atomically."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .errors import ExportError
from .vit import LABELS, binary_metrics, ece, youden_threshold
from .train_classifier_data import augment, image_processor, load_split, to_tensor
from .train_classifier_model import (
    bake_temperature, build_model, distillation_loss, fit_temperature, init_stem_from_cnn, init_weights, load_teacher,
    predict,
)


def check_same_split(args: argparse.Namespace) -> None:
    """A teacher or starting checkpoint trained with another validation split has seen this run's validation images,
    which would then judge nothing: refuse it. The split is a function of (--seed, --val-frac, --data, --limit-per-
    class) (data.stratified_split); a checkpoint's run folder records them in summary.json."""
    for flag, ck in (("--teacher", args.teacher), ("--init-from", args.init_from),
                     ("--stem-init", getattr(args, "stem_init", None))):
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
            "time_budget_min", "limit_per_class", "teacher", "init_from", "distill", "distill_alpha", "distill_tau",
            "conv_stem", "stem_init")
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
    if getattr(args, "stem_init", None):
        init_from = f"{init_from}; stem: {init_stem_from_cnn(model, args.stem_init)}"
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
