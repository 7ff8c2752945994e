"""`cxr-export classifier`: a transformers ViTForImageClassification checkpoint -> ONNX `model.onnx`.

Graph: pixel_values float32 [batch,3,H,W] -> logits [b,C], probabilities [b,C] (softmax), embedding [b,hidden]
(final-layernormed CLS token, what the classifier head reads) and attentions [b,layers,heads,T,T] (eager attention
probabilities of every layer, for attention rollout). Preprocessing (size, resample, mean, std) comes from the
checkpoint's preprocessor_config.json, labels from config.id2label. The manifest entry records ONNX Runtime vs
PyTorch parity on the same input (fp32 must be <= --atol, default 1e-4).

Sources: --checkpoint DIR (a local save_pretrained folder; hub ids need the network, which is not available here) or
--random-init --size tiny|full (full = ViT-B/16 224) for fixtures.

--evaluate-data DIR evaluates the exported graph(s) on DIR/test/<label>/ with ONNX Runtime into card.metrics.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .checkpoints import transformers_config
from .errors import ExportError
from .images import preprocess_file  # noqa: F401  (re-exported: the app-preprocessing reference)

RESAMPLE = {2: "bilinear", 3: "bicubic", "bilinear": "bilinear", "bicubic": "bicubic"}
TEST_DATASET = "kermany-cxr-224 test (624)"
GOLDEN_COUNT = 48


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------------------------


def random_config(size: str, labels=("NORMAL", "PNEUMONIA")):
    from .vit import vit_config

    if size == "full":  # ViT-B/16 224
        arch = dict(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072)
    elif size == "tiny":
        arch = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)
    elif size == "pneumonia-vit":  # the architecture train-classifier trains
        arch = {}
    else:
        raise ExportError(f"unknown --size {size}")
    return vit_config(labels=list(labels), **arch)


def load_model(checkpoint=None, size: str = "tiny", seed: int = 0):
    """(model in eval mode with eager attention, preprocessor dict or None)."""
    import torch
    from transformers import ViTForImageClassification

    if checkpoint is None:
        torch.manual_seed(seed)
        config = random_config(size)
        config._attn_implementation = "eager"
        model = ViTForImageClassification(config)
        return model.eval(), None
    ck, _ = transformers_config(checkpoint, ("vit",), what="ViTForImageClassification")
    try:
        model = ViTForImageClassification.from_pretrained(ck, attn_implementation="eager")
    except Exception as exc:
        raise ExportError(f"--checkpoint {ck}: could not load ViTForImageClassification: {exc}") from exc
    pre = None
    if (ck / "preprocessor_config.json").is_file():
        pre = json.loads((ck / "preprocessor_config.json").read_text())
    return model.eval(), pre


def preprocessing_of(model, pre: dict | None) -> dict:
    """The manifest Preprocessing block from an image processor config (ViT defaults when absent)."""
    s = int(model.config.image_size)
    size = [s, s]
    mean, std, resample = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], "bilinear"
    if pre:
        sz = pre.get("size")
        if isinstance(sz, dict) and "height" in sz:
            size = [int(sz["height"]), int(sz["width"])]
        elif isinstance(sz, dict) and "shortest_edge" in sz:
            size = [int(sz["shortest_edge"])] * 2
        elif isinstance(sz, int):
            size = [sz, sz]
        mean = [float(v) for v in pre.get("image_mean", mean)]
        std = [float(v) for v in pre.get("image_std", std)]
        resample = RESAMPLE.get(pre.get("resample", 2), "bilinear")
    if size != [s, s]:
        raise ExportError(f"preprocessor size {size} differs from the model's image_size {s}")
    return {"size": size, "resize": resample, "mean": mean, "std": std, "layout": "NCHW"}


def labels_of(model) -> list[str]:
    id2label = model.config.id2label
    return [str(id2label[i]) for i in range(len(id2label))]


# ---------------------------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------------------------


def wrap(model):
    import torch

    class ViTClassifierGraph(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            out = self.m.vit(pixel_values, output_attentions=True)
            cls = out.last_hidden_state[:, 0, :]  # ViTModel applies the final layernorm
            logits = self.m.classifier(cls)
            return logits, torch.softmax(logits, dim=-1), cls, torch.stack(tuple(out.attentions), dim=1)

    return ViTClassifierGraph(model).eval()


OUTPUTS = ["logits", "probabilities", "embedding", "attentions"]
DYNAMIC = {"pixel_values": {0: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"},
           "embedding": {0: "batch"}, "attentions": {0: "batch"}}


def export(model, pre: dict | None, out_dir: Path, model_id: str, *, weights: str, source: str, atol: float = 1e-4,
           seed: int = 0, card: dict | None = None, name: str | None = None, write_manifest: bool = True) -> dict:
    """Exports model to out_dir/model_id/model.onnx (atomically), checks parity, upserts the manifest entry."""
    import torch

    from .onnx_utils import atomic_dir, export as onnx_export
    from .parity import check, run_onnx

    out_dir = Path(out_dir)
    prep = preprocessing_of(model, pre)
    labels = labels_of(model)
    h, w = prep["size"]
    graph = wrap(model)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    with torch.no_grad():
        ref = dict(zip(OUTPUTS, (t.numpy() for t in graph(torch.from_numpy(x)))))
    with atomic_dir(out_dir / model_id) as tmp:
        onnx_export(graph, (torch.from_numpy(x),), tmp / "model.onnx", ["pixel_values"], OUTPUTS, DYNAMIC)
        got = run_onnx(tmp / "model.onnx", {"pixel_values": x})
        diff = check(ref, got, atol, name=f"{model_id}/model.onnx")
        # dynamic batch: a batch of 3 must run and give the same first row
        x3 = np.concatenate([x, x[:1]], 0)
        got3 = run_onnx(tmp / "model.onnx", {"pixel_values": x3})
        if got3["logits"].shape[0] != 3:
            raise ExportError("exported graph does not take a dynamic batch")
        diff = max(diff, check({"logits": ref["logits"]}, {"logits": got3["logits"][:2]}, atol, name="batch-3"))
    final = out_dir / model_id
    cfg = model.config
    tokens = (h // cfg.patch_size) * (w // cfg.patch_size) + 1
    entry = {
        "id": model_id,
        "name": name or f"ViT classifier ({model_id})",
        "family": "classifier",
        "task": "image-classification",
        "weights": weights,
        "license": "Apache-2.0",
        "source": source,
        "variants": {"fp32": {"dtype": "fp32", "files": [mf.file_record(out_dir, final / "model.onnx", "model")],
                              "parity": mf.parity_record(diff, "PyTorch ViTForImageClassification (eager), fp32, "
                                                         f"seeded N(0,1) input [2,3,{h},{w}], all outputs")}},
        "preprocessing": prep,
        "labels": labels,
        "io": {"model": {"inputs": ["pixel_values"], "outputs": list(OUTPUTS)}},
        "config": {"hidden_size": int(cfg.hidden_size), "num_layers": int(cfg.num_hidden_layers),
                   "num_heads": int(cfg.num_attention_heads), "patch_size": int(cfg.patch_size),
                   "num_tokens": tokens, "cls_token_index": 0, "positive_label": labels[-1],
                   "attentions_shape": ["batch", int(cfg.num_hidden_layers), int(cfg.num_attention_heads), tokens,
                                        tokens]},
        "card": card or {"summary": "ViT image classifier.", "limitations": "Not for clinical use."},
    }
    if write_manifest:
        mf.upsert_entry(out_dir, entry)
    return entry


# ---------------------------------------------------------------------------------------------------------------
# Evaluation and goldens
# ---------------------------------------------------------------------------------------------------------------


def test_items(data_root, labels: list[str]) -> list[tuple[str, int]]:
    """[(path relative to data_root, label index)] of data_root/test/<label>/, sorted."""
    from .data import list_image_folder

    root = Path(data_root)
    out = []
    for p, lab in list_image_folder(root / "test"):
        if lab not in labels:
            raise ExportError(f"{root}/test: class folder {lab!r} is not a model label {labels}")
        out.append((Path(p).relative_to(root).as_posix(), labels.index(lab)))
    return out


def onnx_probabilities(onnx_path, data_root, items, prep, batch: int = 64) -> np.ndarray:
    """P [N, C] of ONNX Runtime on the listed images through the app's preprocessing; one image per run for a graph
    whose activation scales span the batch (parity.batch_coupled), as the app runs it."""
    from .parity import batch_coupled, run_onnx

    if batch_coupled(onnx_path):
        batch = 1
    probs = []
    for i in range(0, len(items), batch):
        x = np.stack([preprocess_file(Path(data_root) / p, prep) for p, _ in items[i:i + batch]])
        probs.append(run_onnx(onnx_path, {"pixel_values": x}, outputs=["probabilities"])["probabilities"])
    return np.concatenate(probs).astype(np.float64)


def evaluate(onnx_path, data_root, prep: dict, labels: list[str], threshold: float) -> dict:
    """ONNX Runtime metrics on data_root/test (positive = the last label)."""
    from .vit import binary_metrics

    items = test_items(data_root, labels)
    p = onnx_probabilities(onnx_path, data_root, items, prep)
    y = np.array([c for _, c in items])
    return binary_metrics(y, p[:, -1], threshold)


# The app's rule for choosing int8 (app/lib/models/quantized.ts CARD_TOLERANCE): every card metric within this.
INT8_TOLERANCE = 0.005
CARD_KEYS = ("accuracy", "precision", "recall", "specificity", "f1", "auc", "ece_15")


def worst_metric_diff(fp32: dict, other: dict) -> float:
    """max |other[k] - fp32[k]| over the card metrics (accuracy ... ece_15) of two evaluate() results."""
    return max(abs(float(other[k]) - float(fp32[k])) for k in CARD_KEYS)


def card_metrics(fp32: dict, int8: dict | None) -> dict:
    """Flat card.metrics (Record<string, number|string>): fp32 metrics + int8_* ones + confusion matrices."""
    keys = ["accuracy", "precision", "recall", "specificity", "f1", "auc", "ece_15", "tp", "tn", "fp", "fn", "n"]
    out: dict = {"dataset": TEST_DATASET, "runtime": "onnxruntime CPU, fp32 model.onnx", "threshold": fp32["threshold"]}
    out.update({k: fp32[k] for k in keys})
    out["confusion_matrix"] = json.dumps([[fp32["tn"], fp32["fp"]], [fp32["fn"], fp32["tp"]]]) + \
        " rows = true (NORMAL, PNEUMONIA), cols = predicted"
    if int8:
        out.update({f"int8_{k}": int8[k] for k in keys})
        out["int8_confusion_matrix"] = json.dumps([[int8["tn"], int8["fp"]], [int8["fn"], int8["tp"]]])
    return out


def write_goldens(checkpoint, data_root, goldens_dir, prep: dict | None = None, count: int = GOLDEN_COUNT,
                  seed: int = 0, model_id: str | None = None) -> Path:
    """tests/goldens/<id>/test-images.json: `count` real test images balanced across labels (seeded), each with the
    PyTorch fp32 probabilities and logits from the app's preprocessing."""
    import torch

    model, pre = load_model(checkpoint)
    prep = prep or preprocessing_of(model, pre)
    labels = labels_of(model)
    items = test_items(data_root, labels)
    rng = np.random.default_rng(seed)
    per = count // len(labels)
    chosen = []
    for c in range(len(labels)):
        idx = [i for i, (_, y) in enumerate(items) if y == c]
        chosen += sorted(rng.choice(idx, size=min(per, len(idx)), replace=False).tolist())
    sel = [items[i] for i in chosen]
    x = torch.from_numpy(np.stack([preprocess_file(Path(data_root) / p, prep) for p, _ in sel]))
    with torch.no_grad():
        logits = model(pixel_values=x).logits.double()
    probs = logits.softmax(-1)
    doc = {
        "model": model_id or Path(checkpoint).name,
        "data_root": "../shared/data/kermany-cxr-224",
        "reference": "PyTorch fp32 ViTForImageClassification on PIL-decoded RGB, resized with PIL only when the size "
                     "differs, /255, (x - mean) / std",
        "preprocessing": prep,
        "labels": labels,
        "images": [{"path": p, "label": labels[y], "probabilities": [float(v) for v in pr],
                    "logits": [float(v) for v in lg]} for (p, y), pr, lg in zip(sel, probs.tolist(), logits.tolist())],
    }
    goldens_dir = Path(goldens_dir)
    goldens_dir.mkdir(parents=True, exist_ok=True)
    out = goldens_dir / "test-images.json"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1) + "\n")
    tmp.replace(out)
    return out


def card_summary(summary: dict) -> str:
    """The card's one-paragraph summary of a train-classifier run: architecture, how it was trained (from scratch,
    or from earlier weights with distillation / temperature scaling), threshold rule and test-split rule."""
    arch = summary.get("arch", {})
    how = []
    if summary.get("init_from"):
        how.append("started from the weights of an earlier run")
    if "distillation" in summary.get("loss", ""):
        how.append("distilled from a CNN trained here")
    if summary.get("calibration"):
        how.append(f"temperature-scaled on validation (T {summary['calibration']['temperature']:.3f})")
    trained = ("trained in this project (" + ", ".join(how) + ")") if how else "trained from scratch in this project"
    return (f"Small Vision Transformer (ViT, patch {arch.get('patch_size', 32)}, {arch.get('image_size', 224)} px) "
            f"{trained} on the Kermany train split to tell PNEUMONIA from NORMAL on pediatric chest X-rays. "
            "Threshold chosen on the validation split (max Youden J); the test split was used only for the metrics "
            "below.")


def reference_cnn(summary: dict) -> dict:
    """{'reference_cnn': ...} when the run was distilled from a train-classifier CNN run that reported its test
    metrics (--report-test): the CNN reference row of the model card (its arch, val threshold, test metrics)."""
    import re

    m = re.search(r"distillation from (\S+) \(", summary.get("loss", ""))
    if not m:
        return {}
    teacher_run = Path(m.group(1)).parent
    ts = teacher_run / "summary.json"
    if not ts.is_file():
        return {}
    t = json.loads(ts.read_text())
    if "test_metrics" not in t:
        return {}
    keep = ("accuracy", "precision", "recall", "specificity", "f1", "auc", "ece_15", "tp", "tn", "fp", "fn")
    return {"reference_cnn": {"arch": t.get("arch"), "threshold": t.get("threshold"),
                              "val_metrics": {k: t["val_metrics"].get(k) for k in keep},
                              "test_metrics": {k: t["test_metrics"].get(k) for k in keep},
                              "training_time_s": t.get("training_time_s"), "command": t.get("command"),
                              "role": "teacher of the distillation and the CNN reference row (PyTorch, test "
                                      "metrics at its own val threshold)"}}


def publish(run_dir: Path, models_dir: Path, model_id: str, data_root: Path, goldens_dir: Path | None = None,
            atol: float = 1e-4) -> dict:
    """A train-classifier run -> models_dir/model_id (fp32 + int8) with test metrics (ONNX Runtime) on the card,
    and tests/goldens/<model_id>/test-images.json."""
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
    manifest = mf.load(models_dir)
    for e in manifest["models"]:
        if e["id"] == model_id:
            e["card"]["metrics"] = {**card_metrics(m32, m8), **int8_note}
    mf.save(models_dir, manifest)
    g = write_goldens(ck, data_root, goldens_dir or repo_root() / "tests" / "goldens" / model_id, prep,
                      model_id=model_id)
    print(json.dumps({"fp32": m32, "int8": m8, "goldens": str(g)}), flush=True)
    return {"fp32": m32, "int8": m8}


# ---------------------------------------------------------------------------------------------------------------
# The subcommand
# ---------------------------------------------------------------------------------------------------------------


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
        return publish(args.run_dir, args.out_dir, args.model_id, args.evaluate_data, args.goldens_dir, args.atol)
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
    p.set_defaults(func=run)
