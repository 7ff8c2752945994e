"""`cxr-export quantize-search`: which static int8 (QDQ) settings keep a ViT's card metrics within 0.005 of fp32.

Each setting (quantize_static options: which MatMuls, per-channel weights, calibration method and size, symmetric
activations, activation type, excluded nodes) is quantized from the fp32 graph, calibrated on Kermany *train* images
(the part train-classifier did not hold out for validation), and scored on the validation split (the choice is made
there) and on the test split (reported only). Scores: max |p_int8 - p_fp32| over images and the card metrics
(classifier_eval.CARD_KEYS) of both. For cxr-clip's image tower, p is the zero-shot PNEUMONIA probability with the
default prompts and the fp32 text tower, as its card computes it (clip_eval.card). Writes a JSON table.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .errors import ExportError
from .quantize_static import ArrayCalibration, quantize_static_graph  # noqa: F401 (re-exported for callers)

# name -> quantize_static settings (quantize_static_graph keywords); 'excl' lists node-name substrings to keep fp32
SETTINGS = {
    "prev (all MatMul, MinMax, 64)": dict(const_b_only=False, n_calib=64, method="MinMax"),
    "weights-only MatMul, MinMax, 64": dict(n_calib=64, method="MinMax"),
    "weights-only MatMul, MinMax, 512": dict(n_calib=512, method="MinMax"),
    "weights-only MatMul, MinMax, 512, sym act": dict(n_calib=512, method="MinMax", act_symmetric=True),
    "weights-only MatMul, MinMax, 512, U8 act": dict(n_calib=512, method="MinMax", act_type="u8"),
    "weights-only MatMul, Percentile 99.99, 512": dict(n_calib=512, method="Percentile", percentile=99.99),
    "weights-only MatMul, Entropy, 512": dict(n_calib=512, method="Entropy"),
    "weights-only MatMul, MinMax, 512, no fc2": dict(n_calib=512, method="MinMax", excl=["fc2"]),
    "weights-only MatMul, MinMax, 512, per-tensor": dict(n_calib=512, method="MinMax", per_channel=False),
    "SmoothQuant a0.5, MinMax, 512": dict(n_calib=512, method="MinMax", smooth_alpha=0.5),
    "SmoothQuant a0.5, MinMax, 512, no fc2": dict(n_calib=512, method="MinMax", smooth_alpha=0.5, excl=["fc2"]),
    "SmoothQuant a0.7, MinMax, 512": dict(n_calib=512, method="MinMax", smooth_alpha=0.7),
    "SmoothQuant a0.3, MinMax, 512": dict(n_calib=512, method="MinMax", smooth_alpha=0.3),
}


def _session(path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def _run(path, x: np.ndarray, output: str, batch: int = 64) -> np.ndarray:
    s = _session(path)
    return np.concatenate([s.run([output], {"pixel_values": x[i:i + batch]})[0] for i in range(0, len(x), batch)])


def load_sets(n_calib: int, seed: int = 0) -> dict:
    """Preprocessed [N,3,224,224] calibration (train part, seeded), val and test images with labels (1 = PNEUMONIA),
    the split of train-classifier (data.VAL_FRAC / SPLIT_SEED)."""
    from . import data as D
    from .data import SPLIT_SEED, VAL_FRAC
    from .train_classifier_data import to_tensor

    root = D.shared_dir() / "data" / "kermany-cxr-224"
    tr = D.kermany_split(root, "train")
    y = np.array([lab == "PNEUMONIA" for _, lab in tr], dtype=np.int64)
    tr_idx, va_idx = D.stratified_split(y, VAL_FRAC, SPLIT_SEED)
    rng = np.random.default_rng(seed)
    cal = np.sort(rng.choice(tr_idx, size=min(n_calib, len(tr_idx)), replace=False))
    rng.shuffle(cal)  # calibration order mixed across classes
    te = D.kermany_split(root, "test")

    def px(items):
        return to_tensor(D.load_images([p for p, _ in items], 224)).numpy()

    return {"calib": px([tr[i] for i in cal]), "val": px([tr[i] for i in va_idx]), "y_val": y[va_idx],
            "test": px(te), "y_test": np.array([lab == "PNEUMONIA" for _, lab in te], dtype=np.int64)}


def scorer(model_id: str, models_dir: Path):
    """(fp32 graph, fn(graph, x) -> p [N] PNEUMONIA probability, threshold) for the classifier or cxr-clip."""
    from . import manifest as mf

    entry = next((e for e in mf.load(models_dir)["models"] if e["id"] == model_id), None)
    if entry is None:
        raise ExportError(f"no model {model_id!r} in {models_dir}")
    if entry["family"] == "classifier":
        pos = entry["labels"].index(entry["config"].get("positive_label", entry["labels"][-1]))
        return (models_dir / model_id / "model.onnx", lambda g, x: _run(g, x, "probabilities")[:, pos],
                float(entry["card"]["threshold"]))
    from .clip_eval import probabilities_from
    from .clip_export import DEFAULT_PROMPTS, OrtClip

    clip = OrtClip(models_dir / model_id, "", one_per_call=False)
    scale = float(entry["config"]["logit_scale"])
    col = list(DEFAULT_PROMPTS).index("PNEUMONIA")
    return (models_dir / model_id / "image_encoder.onnx",
            lambda g, x: probabilities_from(_run(g, x, "image_embeds"), clip.texts, scale, DEFAULT_PROMPTS)[:, col],
            0.5)


def compare(p32: np.ndarray, p8: np.ndarray, y: np.ndarray, thr: float) -> dict:
    """max |Δp| and the worst card-metric difference (with the metric) between two probability vectors."""
    from .classifier_eval import CARD_KEYS
    from .vit import binary_metrics

    a, b = binary_metrics(y, p32, thr), binary_metrics(y, p8, thr)
    diffs = {k: float(b[k]) - float(a[k]) for k in CARD_KEYS}
    worst = max(diffs, key=lambda k: abs(diffs[k]))
    return {"max_dp": float(np.abs(p8 - p32).max()), "mean_dp": float(np.abs(p8 - p32).mean()), "worst_metric": worst, "worst_diff": diffs[worst],
            "diffs": diffs, "flips": int(((p8 >= thr) != (p32 >= thr)).sum())}


def search(model_id: str, models_dir: Path, out: Path, settings: list[str] | None = None, seed: int = 0) -> dict:
    """Scores every setting (SETTINGS) on val and test; writes out/<model_id>.json and returns it."""
    out.mkdir(parents=True, exist_ok=True)
    chosen = settings or list(SETTINGS)
    sets = load_sets(max(SETTINGS[s].get("n_calib", 64) for s in chosen), seed)
    g32, prob, thr = scorer(model_id, models_dir)
    ref = {k: prob(g32, sets[k]) for k in ("val", "test")}
    table = {}
    for name in chosen:
        t0 = time.time()
        dst = out / f"{model_id}.{abs(hash(name)) % 10**8}.onnx"
        quantize_static_graph(g32, dst, sets["calib"], **SETTINGS[name])
        row = {"settings": SETTINGS[name], "graph": str(dst)}
        for k in ("val", "test"):
            row[k] = compare(ref[k], prob(dst, sets[k]), sets[f"y_{k}"], thr)
        row["seconds"] = round(time.time() - t0, 1)
        table[name] = row
        print(json.dumps({"setting": name, "val": {k: row["val"][k] for k in ("max_dp", "worst_metric", "worst_diff")},
                          "test": {k: row["test"][k] for k in ("max_dp", "worst_metric", "worst_diff")},
                          "s": row["seconds"]}), flush=True)
        (out / f"{model_id}.json").write_text(json.dumps(table, indent=1))
    return table


def sensitivity(model_id: str, models_dir: Path, out: Path, n_calib: int = 512, seed: int = 0) -> dict:
    """Per weight MatMul: the val drift when only that node is quantized (MinMax, per-channel), worst first."""
    import onnx

    out.mkdir(parents=True, exist_ok=True)
    sets = load_sets(n_calib, seed)
    g32, prob, thr = scorer(model_id, models_dir)
    ref = prob(g32, sets["val"])
    model = onnx.load(str(g32))
    inits = {i.name for i in model.graph.initializer}
    nodes = [n.name for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    res = {}
    for name in nodes:
        dst = out / f"{model_id}.single.onnx"
        quantize_static_graph(g32, dst, sets["calib"], excl=[n for n in nodes if n != name])
        r = compare(ref, prob(dst, sets["val"]), sets["y_val"], thr)
        res[name] = {"max_dp": r["max_dp"], "mean_dp": r["mean_dp"]}
        print(json.dumps({name: res[name]}), flush=True)
    (out / f"{model_id}.sensitivity.json").write_text(json.dumps(res, indent=1))
    return res


def update_card(model_id: str, models_dir: Path) -> dict:
    """Re-measures the shipped int8 variant's card metrics (int8_* in card.metrics, what app/lib/models/quantized.ts
    compares with fp32) on the test split with ONNX Runtime, as `cxr-export classifier --run-dir` / `train-clip
    --export-to` measure them, after `cxr-export quantize --int8-method qdq` replaced the graph."""
    from . import manifest as mf

    man = mf.load(models_dir)
    entry = next(e for e in man["models"] if e["id"] == model_id)
    variant = entry["variants"]["int8"]
    how = variant.get("activation_quantization", "dynamic")
    method = "qdq" if how == "static" else "dynamic"
    folder = models_dir / model_id
    if entry["family"] == "classifier":
        from .classifier_eval import card_metrics, evaluate, worst_metric_diff
        from .data import shared_dir

        data = shared_dir() / "data" / "kermany-cxr-224"
        thr = float(entry["card"]["threshold"])
        m32 = evaluate(folder / "model.onnx", data, entry["preprocessing"], entry["labels"], thr)
        m8 = evaluate(folder / "model.int8.onnx", data, entry["preprocessing"], entry["labels"], thr)
        old = entry["card"]["metrics"]
        tried = json.loads(old.get("int8_worst_card_diff") or "{}")
        tried[method] = worst_metric_diff(m32, m8)
        entry["card"]["metrics"] = {**old, **card_metrics(m32, m8), "int8_method": method,
                                    "int8_worst_card_diff": json.dumps(tried)}
        out = {"fp32": m32, "int8": m8}
    else:
        from .clip_card import COMPARED, card_for, eval_data
        from .clip_export import OrtClip

        data = eval_data()
        scale = float(entry["config"]["logit_scale"])
        f32 = OrtClip(folder, "", one_per_call=False)
        image = next(f["path"] for f in variant["files"] if f["role"] == "image_encoder")
        i8 = _session(models_dir / image)
        one = how != "static"
        img8 = lambda x: np.concatenate([i8.run(None, {"pixel_values": x[s:s + (1 if one else 32)]})[0]  # noqa: E731
                                         for s in range(0, len(x), 1 if one else 32)])
        text = next(f["path"] for f in variant["files"] if f["role"] == "text_encoder")
        txt = f32 if text.endswith("text_encoder.onnx") else OrtClip(folder, ".int8", one_per_call=True)
        c8 = card_for(img8, txt.texts, scale, data)
        m = entry["card"]["metrics"]
        m.update({f"int8_{k}": c8["default_prompts"][k] for k in COMPARED})
        m["int8_heldout_auc_mean"] = c8["heldout_auc"]["mean"]
        m["int8_method"] = f"{method} ({image}, {text})"
        entry["card"]["int8_matches_fp32"] = bool(max(abs(m[f"int8_{k}"] - m[k]) for k in COMPARED) <= 0.005)
        entry["card"].setdefault("evaluation", {})["int8"] = c8
        out = {"int8": c8["default_prompts"], "int8_matches_fp32": entry["card"]["int8_matches_fp32"]}
    mf.upsert_entry(models_dir, entry)
    print(json.dumps(out, default=float), flush=True)
    return out


def run(args: argparse.Namespace) -> dict:
    if args.update_card:
        return update_card(args.model_id, args.models_dir)
    return search(args.model_id, args.models_dir, args.out, args.settings, args.seed)


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize-search", help="score static int8 QDQ settings on val/test vs fp32",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", dest="model_id", default="pneumonia-vit")
    p.add_argument("--models-dir", type=Path, default=Path(__file__).resolve().parents[2] / "public" / "models")
    p.add_argument("--out", type=Path, default=Path("runs/quantize-search"))
    p.add_argument("--settings", nargs="*", default=None, help=f"subset of: {list(SETTINGS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--update-card", action="store_true",
                   help="no search: re-measure the shipped int8 variant's card metrics (test split) into the manifest")
    p.set_defaults(func=run)
