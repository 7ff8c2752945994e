"""`cxr-export train-segmenter`: trains the promptable lung segmenter (lung_segmenter.py), then exports it (fp32 +
fp16 into public/models/<id>/) and evaluates it with ONNX Runtime on the held-out images (segmenter_eval.py). One
command, seeded, resumable: when --time-budget-min stops the training, the same command continues from the checkpoint
in --run-dir; export and evaluation run once the training is complete.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import lung_segmenter
from .lung_segmenter import default_data_dir, repo_root, train
from .segmenter_eval import export_and_evaluate


def run(args: argparse.Namespace) -> dict:
    summary = train(args)
    if args.train_only:
        return summary
    if not summary["done"]:
        print(f"stopped at step {summary['step']} of {args.steps + args.finetune_steps} (time budget): run the same command again to "
              "resume; export and evaluation run when training is complete", flush=True)
        return summary
    return export_and_evaluate(args)


def register(subparsers) -> None:
    p = subparsers.add_parser("train-segmenter", help="train the promptable lung segmenter (SAM interface) on "
                              "cxr-lung-masks, export it to ONNX and evaluate it", description=(__doc__ or "") + (lung_segmenter.__doc__ or ""),
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=default_data_dir(), help="cxr-lung-masks folder")
    p.add_argument("--run-dir", type=Path, default=repo_root() / "export-scripts" / "runs" / "lung-sam",
                   help="checkpoints and logs (ignored by git)")
    p.add_argument("--out-dir", type=Path, default=repo_root() / "public" / "models", help="models root")
    p.add_argument("--id", dest="model_id", default="lung-sam")
    p.add_argument("--golden", type=Path, default=repo_root() / "tests" / "goldens" / "lung-sam" / "heldout.json")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--finetune-steps", type=int, default=200, help="then this many steps with click-weighted prompts "
                   "(FINETUNE_LAYOUTS), own warmup + cosine from --finetune-lr")
    p.add_argument("--finetune-lr", type=float, default=6e-4)
    p.add_argument("--batch", type=int, default=6, help="images per step (both lungs of each are targets)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=60)
    p.add_argument("--aug", type=float, default=1.0, help="augmentation strength (0 = none)")
    p.add_argument("--holdout", type=float, default=0.2, help="fraction of images held out (by source group)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--time-budget-min", type=float, default=None, help="stop training after this many minutes "
                   "(checkpoint kept; the same command resumes)")
    p.add_argument("--checkpoint-every", type=int, default=50)
    p.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--stop-after", type=int, default=None, help="stop after this many steps in this call (as a "
                   "time budget would; the next call resumes)")
    p.add_argument("--tiny", action="store_true", help="tiny architecture at 64 px (tests)")
    p.add_argument("--limit-images", type=int, default=None, help="use only the first N images (tests)")
    p.add_argument("--train-only", action="store_true", help="skip export and evaluation")
    p.set_defaults(func=run)
