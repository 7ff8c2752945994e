"""Evaluation and goldens for `cxr-export classifier` (classifier.py): the exported graph(s) on a test split with ONNX
Runtime, the model-card metrics and the app's int8 rule (app/lib/models/quantized.ts CARD_TOLERANCE), the card
summary and reference CNN row, and the golden outputs the app's tests compare against."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import ExportError
from .images import preprocess_file
from .classifier_export import labels_of, load_model, preprocessing_of


TEST_DATASET = "kermany-cxr-224 test (624)"
GOLDEN_COUNT = 48


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


def card_metrics(fp32: dict, int8: dict | None, fp16: dict | None = None) -> dict:
    """Flat card.metrics (Record<string, number|string>): fp32 metrics + int8_* / fp16_* ones + confusion matrices
    (the keys app/lib/models/quantized.ts compares)."""
    keys = ["accuracy", "precision", "recall", "specificity", "f1", "auc", "ece_15", "tp", "tn", "fp", "fn", "n"]
    out: dict = {"dataset": TEST_DATASET, "runtime": "onnxruntime CPU, fp32 model.onnx", "threshold": fp32["threshold"]}
    out.update({k: fp32[k] for k in keys})
    out["confusion_matrix"] = json.dumps([[fp32["tn"], fp32["fp"]], [fp32["fn"], fp32["tp"]]]) + \
        " rows = true (NORMAL, PNEUMONIA), cols = predicted"
    if int8:
        out.update({f"int8_{k}": int8[k] for k in keys})
        out["int8_confusion_matrix"] = json.dumps([[int8["tn"], int8["fp"]], [int8["fn"], int8["tp"]]])
    if fp16:
        out.update({f"fp16_{k}": fp16[k] for k in keys})
        out["fp16_confusion_matrix"] = json.dumps([[fp16["tn"], fp16["fp"]], [fp16["fn"], fp16["tp"]]])
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
    if "stem:" in str(summary.get("init_from") or ""):
        how.append("stem from the CNN's backbone, transformer from the weights of an earlier run")
    elif summary.get("init_from"):
        how.append("started from the weights of an earlier run")
    if "distillation" in summary.get("loss", ""):
        how.append("distilled from a CNN trained here")
    if summary.get("calibration"):
        how.append(f"temperature-scaled on validation (T {summary['calibration']['temperature']:.3f})")
    trained = ("trained in this project (" + ", ".join(how) + ")") if how else "trained from scratch in this project"
    stem = arch.get("conv_stem")
    if stem:  # vit.py's hybrid: a ResNet stem's stride-32 feature map as the tokens
        what = (f"Small hybrid Vision Transformer (ResNet stem, widths {'-'.join(str(w) for w in stem['widths'])}, "
                f"as the tokens of a ViT, {arch.get('image_size', 224)} px)")
    else:
        what = f"Small Vision Transformer (ViT, patch {arch.get('patch_size', 32)}, {arch.get('image_size', 224)} px)"
    return (f"{what} "
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
