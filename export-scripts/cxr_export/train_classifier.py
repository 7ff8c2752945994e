"""`cxr-export train-classifier`: trains the project's pneumonia classifier on the Kermany TRAIN split only: the app's
small Vision Transformer (transformers ViTForImageClassification, --model vit) or a from-scratch CNN (ResNet, --model
resnet: the distillation teacher and the model card's reference row). A stratified validation set (--val-frac,
seeded) is carved out of train; the epoch (checkpoint), the EMA-or-raw choice, the temperature (--temperature-scaling)
and the decision threshold (max Youden J) are all chosen on val. The test split is never read by training
(--report-test reads it once, after training, for a reference row).

Levers: --teacher DIR (knowledge distillation, soft or hard, the teacher seeing the same augmented batch), --init-from
(a checkpoint folder or an exported ViT .onnx), --conv-stem resnet with --stem-init (a hybrid ViT whose stem starts
from the CNN's backbone), --temperature-scaling (fitted on val, baked into the last layer).
A teacher or starting run with another validation split is refused (it has seen this run's validation images).

Writes (atomically) into --out (default export-scripts/runs/pneumonia-vit):
  checkpoint/        save_pretrained model + preprocessor_config.json (the best val epoch)
  log.jsonl          one line per epoch: train loss, val loss/AUC/accuracy/F1, seconds
  summary.json       config, seed, chosen epoch, val metrics, threshold, calibration, wall time, command
and, while a run is unfinished, <out>.resume.pt beside it (per epoch; the same command resumes from it).

--export-id ID additionally exports the checkpoint to <--models-dir>/ID (fp32 + int8), evaluates both on the test
split with ONNX Runtime into the card, and regenerates tests/goldens/ID/test-images.json
(see cxr_export.classifier.publish).

This module is the CLI (run, register) and re-exports the parts: train_classifier_data.py, train_classifier_model.py,
train_classifier_loop.py.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .vit import (DEFAULT_ARCH, LABELS, MEAN, STD, binary_metrics, ece, roc_auc,  # noqa: F401  (re-exported)
                  vit_config, youden_threshold)
from .train_classifier_data import image_processor, load_split, to_tensor, augment
from .train_classifier_model import (
    resnet_config, build_model, init_weights, load_teacher, distillation_loss, fit_temperature, bake_temperature,
    predict,
)
from .train_classifier_loop import check_same_split, resume_path, train


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


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
    p.add_argument("--conv-stem", choices=["none", "resnet"], default="none",
                   help="resnet: hybrid ViT whose tokens are a ResNet's stride-32 feature map (stages from "
                        "--resnet-widths/--resnet-depths) instead of 32x32 patches (ViT paper's hybrid; Xiao et al. "
                        "2021): same 7x7 token grid at 224 px")
    p.add_argument("--stem-init", type=Path, default=None,
                   help="checkpoint/ folder of a ResNet train-classifier run whose backbone initialises the stem")
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
