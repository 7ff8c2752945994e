"""`cxr-export classifier`: a transformers ViTForImageClassification checkpoint -> ONNX `model.onnx`.

Graph: pixel_values float32 [batch,3,H,W] -> logits [b,C], probabilities [b,C] (softmax), embedding [b,hidden]
(final-layernormed CLS token, what the classifier head reads) and attentions [b,layers,heads,T,T] (eager attention
probabilities of every layer, for attention rollout). Preprocessing (size, resample, mean, std) comes from the
checkpoint's preprocessor_config.json, labels from config.id2label. The manifest entry records ONNX Runtime vs
PyTorch parity on the same input (fp32 must be <= --atol, default 1e-4).

Sources: --checkpoint DIR (a local save_pretrained folder; hub ids need the network, which is not available here) or
--random-init --size tiny|full (full = ViT-B/16 224) for fixtures.

--evaluate-data DIR evaluates the exported graph(s) on DIR/test/<label>/ with ONNX Runtime into card.metrics.

This module is the job (publish, the CLI) and re-exports the parts: classifier_export.py (loading and export),
classifier_eval.py (evaluation and goldens).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from . import manifest as mf
from .errors import ExportError
from .images import preprocess_file  # noqa: F401  (re-exported: the app-preprocessing reference)
from .classifier_export import (
    RESAMPLE, random_config, load_model, preprocessing_of, labels_of, wrap, OUTPUTS, DYNAMIC, export,
)
from .classifier_eval import (
    TEST_DATASET, GOLDEN_COUNT, test_items, onnx_probabilities, evaluate, INT8_TOLERANCE, CARD_KEYS,
    worst_metric_diff, card_metrics, write_goldens, card_summary, reference_cnn,
)


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def publish(run_dir: Path, models_dir: Path, model_id: str, data_root: Path, goldens_dir: Path | None = None,
            atol: float = 1e-4, fp16: bool = False) -> dict:
    """A train-classifier run -> models_dir/model_id (fp32 + int8, + fp16 with fp16=True) with test metrics (ONNX
    Runtime) on the card, and tests/goldens/<model_id>/test-images.json. When model_id is already published with
    measured metrics, its card's test metrics move into card.history (oldest first), so that a re-published id keeps
    what the earlier versions scored."""
    from .quantize import quantize

    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    ck = run_dir / "checkpoint"
    model, pre = load_model(ck)
    thr = float(summary["threshold"])
    training = {k: summary.get(k) for k in ("arch", "seed", "epochs", "steps", "batch_size", "lr", "weight_decay",
                                            "label_smoothing", "ema", "loss", "val_frac", "n_train", "n_val",
                                            "planned_epochs", "time_budget_min", "stopped_early_after_epoch",
                                            "best_epoch", "best_weights", "threshold_rule", "val_metrics",
                                            "seconds_per_epoch", "wall_time_s", "training_time_s", "calibration",
                                            "init_from", "device", "command")}
    training["data"] = "kermany-cxr-224 train split only (val carved out of train, stratified, seeded)"
    training["selection"] = ("checkpoint: best val AUC over epochs (raw or EMA weights); threshold: max Youden J on "
                             "val; runs compared on val AUC only")
    if summary.get("time_budget_min"):
        training["schedule"] = ("cosine LR over a wall-time budget (--time-budget-min): the number of steps depends "
                                "on the machine's speed; seeds, data order and augmentation are deterministic")
    card = {
        "summary": card_summary(summary),
        **previous_versions(models_dir, model_id),
        "threshold": thr,
        "training": training,
        **reference_cnn(summary),
        "intended_use": "Research and teaching demo of in-browser inference; not a medical device.",
        "limitations": "Not for clinical use. Trained on pediatric (1-5 years) AP chest X-rays from one hospital "
                       "(Guangzhou); adult or other-site images are out of distribution. Images were squashed to "
                       "224x224 without keeping the aspect ratio.",
    }
    entry = export(model, pre, models_dir, model_id, weights="trained", atol=atol, card=card,
                   source=f"trained by cxr-export train-classifier ({summary.get('command') or 'see card.training'})",
                   name="Pneumonia ViT (Kermany, trained here)")
    prep = entry["preprocessing"]
    labels = entry["labels"]
    final = Path(models_dir) / model_id
    m32 = evaluate(final / "model.onnx", data_root, prep, labels, thr)
    # int8: static QDQ first (~1.8x faster than dynamic on WASM, the README's lever table); the app only picks int8
    # when its card metrics are within INT8_TOLERANCE of fp32's (app/lib/models/quantized.ts), so when QDQ is not,
    # dynamic quantisation is tried before shipping an int8 the app would not choose.
    tried = {}
    for method in ("qdq", "dynamic"):
        quantize(models_dir, model_id, "int8", int8_method=method)
        m8 = evaluate(final / "model.int8.onnx", data_root, prep, labels, thr)
        tried[method] = worst_metric_diff(m32, m8)
        if tried[method] <= INT8_TOLERANCE:
            break
    int8_note = {"int8_method": method, "int8_worst_card_diff": json.dumps(tried)}
    m16 = None
    if fp16:
        # fp16: for WebGPU with shader-f16 only (the app never picks it on WASM: app/lib/models/manifest.ts).
        quantize(models_dir, model_id, "fp16")
        m16 = evaluate(final / "model.fp16.onnx", data_root, prep, labels, thr)
    manifest = mf.load(models_dir)
    for e in manifest["models"]:
        if e["id"] == model_id:
            e["card"]["metrics"] = {**card_metrics(m32, m8, m16), **int8_note}
    mf.save(models_dir, manifest)
    g = write_goldens(ck, data_root, goldens_dir or repo_root() / "tests" / "goldens" / model_id, prep,
                      model_id=model_id)
    print(json.dumps({"fp32": m32, "int8": m8, "fp16": m16, "goldens": str(g)}), flush=True)
    return {"fp32": m32, "int8": m8, "fp16": m16}


def previous_versions(models_dir: Path, model_id: str) -> dict:
    """{"history": [...]} of the currently published model_id (its own history + its card's test metrics and
    training command), or {} when there is none with measured metrics."""
    old = next((e for e in mf.load(models_dir)["models"] if e["id"] == model_id), None) if \
        (Path(models_dir) / "manifest.json").is_file() else None
    if not old or not (old.get("card") or {}).get("metrics"):
        return {}
    c = old["card"]
    row = {"summary": c.get("summary", ""), "threshold": c.get("threshold"),
           "training_command": (c.get("training") or {}).get("command"),
           "metrics": {k: v for k, v in c["metrics"].items() if not str(k).startswith("fp16_")}}
    return {"history": [*(c.get("history") or []), row]}


def run(args: argparse.Namespace) -> dict:
    if args.goldens_only:
        ck = args.checkpoint or (args.run_dir / "checkpoint" if args.run_dir else None)
        if ck is None:
            raise ExportError("--goldens-only needs --checkpoint DIR or --run-dir DIR")
        load_model(ck)  # validates the checkpoint first
        g = write_goldens(ck, args.evaluate_data, args.goldens_dir or repo_root() / "tests" / "goldens" / args.model_id,
                          model_id=args.model_id)
        print(json.dumps({"goldens": str(g)}))
        return {"goldens": str(g)}
    if args.run_dir:
        return publish(args.run_dir, args.out_dir, args.model_id, args.evaluate_data, args.goldens_dir, args.atol,
                       fp16=args.fp16)
    if not args.random_init and not args.checkpoint:
        raise ExportError("give --checkpoint DIR, --run-dir DIR or --random-init")
    model, pre = load_model(None if args.random_init else args.checkpoint, args.size, args.seed)
    weights = "random-fixture" if args.random_init else "trained"
    source = f"random-init ({args.size}) ViTForImageClassification" if args.random_init else str(args.checkpoint)
    card = {"summary": ("Random weights: a test fixture, its outputs mean nothing." if args.random_init
                        else "ViT image classifier exported from a local checkpoint."),
            "limitations": "Not for clinical use."}
    if args.provisional:
        card["summary"] = ("PROVISIONAL placeholder with the final architecture and I/O names; " + card["summary"]
                           + " It will be replaced by the trained model.")
    entry = export(model, pre, args.out_dir, args.model_id, weights=weights, source=source, atol=args.atol,
                   seed=args.seed, card=card)
    print(json.dumps({"id": entry["id"], "parity": entry["variants"]["fp32"]["parity"]["max_abs_diff"]}))
    return entry


def register(subparsers) -> None:
    from .data import shared_dir

    p = subparsers.add_parser("classifier", help="ViTForImageClassification checkpoint -> ONNX (logits, "
                              "probabilities, embedding, attentions)", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=None, help="local save_pretrained folder")
    p.add_argument("--run-dir", type=Path, default=None,
                   help="a train-classifier --out folder: export + int8 + test metrics + goldens")
    p.add_argument("--evaluate-data", type=Path, default=shared_dir() / "data" / "kermany-cxr-224",
                   help="folder with test/<label>/ (with --run-dir; default ../shared/data/kermany-cxr-224)")
    p.add_argument("--goldens-dir", type=Path, default=None, help="default tests/goldens/<id>")
    p.add_argument("--goldens-only", action="store_true",
                   help="only regenerate <goldens-dir>/test-images.json from --checkpoint / --run-dir")
    p.add_argument("--out-dir", type=Path, default=repo_root() / "public" / "models")
    p.add_argument("--id", dest="model_id", default="pneumonia-vit")
    p.add_argument("--random-init", action="store_true")
    p.add_argument("--size", choices=["tiny", "full", "pneumonia-vit"], default="tiny")
    p.add_argument("--provisional", action="store_true", help="mark the card as a provisional placeholder")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", type=float, default=1e-4)
    p.add_argument("--fp16", action="store_true", help="with --run-dir: also an fp16 variant and its card metrics")
    p.set_defaults(func=run)
