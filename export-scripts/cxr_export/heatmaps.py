"""`cxr-export heatmaps`: PyTorch references for the app's two classifier heatmaps, on real test images.

- Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020): mean over heads,
  A_hat = (A + I) / 2 with rows renormalised, R = A_hat_L ... A_hat_1, the CLS row over the patch tokens,
  normalised to max 1. Computed here from the PyTorch module's own attention probabilities.
- Occlusion sensitivity (Zeiler & Fergus, ECCV 2014, sec. 4.2): a `window` x `window` square of value `fill` (in
  the normalised input space) slid with `stride`; the map is p_target(x) - p_target(x occluded), target = the
  argmax class of the unoccluded image. Computed here with the PyTorch module's forward passes.

The module is the one the ONNX graph came from, rebuilt from the graph (cxr_export.recover, parity-checked), so
the references hold for the shipped weights. Writes tests/goldens/<id>/heatmaps.json; tests/unit/classifier/
heatmaps.test.ts runs app/lib's rollout and occlusion on onnxruntime-web against it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .errors import ExportError


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def rollout_reference(attentions: np.ndarray, prefix: int = 1) -> np.ndarray:
    """attentions [L,H,T,T] -> rollout over the patch tokens [T - prefix], max 1 (float64)."""
    a = np.asarray(attentions, np.float64).mean(1)
    T = a.shape[-1]
    r = np.eye(T)
    for layer in a:
        x = (layer + np.eye(T)) / 2
        x = x / x.sum(-1, keepdims=True)
        r = x @ r
    g = r[0, prefix:]
    return g / g.max() if g.max() > 0 else g


def occlusion_reference(model, x: np.ndarray, window: int, stride: int | None = None, fill: float = 0.0,
                        target: int | None = None) -> dict:
    """x [3,H,W] -> {'drop': [gh*gw], 'grid_w', 'grid_h', 'target', 'base'} with the PyTorch module (batched)."""
    import torch

    stride = stride or window
    _, H, W = x.shape

    def offsets(n):
        o = list(range(0, n - window + 1, stride))
        if o[-1] + window < n:
            o.append(n - window)
        return o

    ys, xs = offsets(H), offsets(W)
    xt = torch.from_numpy(x)[None]
    with torch.no_grad():
        base = model(pixel_values=xt).logits.double().softmax(-1)[0]
        tgt = int(base.argmax()) if target is None else int(target)
        batch = []
        for y0 in ys:
            for x0 in xs:
                z = xt[0].clone()
                z[:, y0:y0 + window, x0:x0 + window] = fill
                batch.append(z)
        probs = torch.cat([model(pixel_values=torch.stack(batch[i:i + 16])).logits.double().softmax(-1)
                           for i in range(0, len(batch), 16)])
    drop = (base[tgt] - probs[:, tgt]).numpy()
    return {"drop": drop, "grid_w": len(xs), "grid_h": len(ys), "target": tgt, "base": float(base[tgt])}


def write_goldens(model_id: str, models_dir: Path, data: Path, out: Path, per_class: int = 2, seed: int = 0) -> Path:
    import torch

    from . import data as D
    from .classifier import preprocess_file
    from .recover import arch_of, checked_vit_from_onnx

    entry = next((e for e in mf.load(models_dir)["models"] if e["id"] == model_id), None)
    if entry is None:
        raise ExportError(f"{models_dir}/manifest.json has no model '{model_id}'")
    graph = next(f for f in entry["variants"]["fp32"]["files"] if f["role"] == "model")
    model, diff = checked_vit_from_onnx(models_dir / graph["path"], arch_of(entry), entry["labels"])
    prep = entry["preprocessing"]
    window = int(entry["config"]["patch_size"])
    items = D.kermany_split(data, "test")
    rng = np.random.default_rng(seed)
    chosen = []
    for lab in entry["labels"]:
        idx = [i for i, (_, l) in enumerate(items) if l == lab]
        chosen += sorted(rng.choice(idx, size=per_class, replace=False).tolist())
    images = []
    for i in chosen:
        p, lab = items[i]
        x = preprocess_file(p, prep)
        with torch.no_grad():
            r = model(pixel_values=torch.from_numpy(x)[None], output_attentions=True)
        att = torch.stack(tuple(r.attentions), 1)[0].numpy()
        occ = occlusion_reference(model, x, window)
        images.append({
            "path": Path(p).relative_to(Path(data).parent).as_posix(),
            "label": lab,
            "probabilities": [float(v) for v in r.logits.double().softmax(-1)[0]],
            "rollout": [float(v) for v in rollout_reference(att)],
            "occlusion": {"window": window, "stride": window, "fill": 0.0, "target": occ["target"],
                          "base": occ["base"], "grid_w": occ["grid_w"], "grid_h": occ["grid_h"],
                          "drop": [float(v) for v in occ["drop"]]},
        })
    doc = {"model": model_id, "reference": "PyTorch ViTForImageClassification rebuilt from the ONNX graph "
           f"(max abs diff to ONNX Runtime {diff:.2e}), eager attention, float32 forward, float64 rollout",
           "data_root": "../shared/data", "preprocessing": prep, "images": images}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    return out


def references_for_inputs(model_id: str, models_dir: Path, inputs: list[Path], out: Path) -> Path:
    """The same references for raw model inputs (little-endian float32 [3,H,W] files, e.g. written by the app's
    preprocessing in a test), so that a comparison holds the input fixed and checks only the two algorithms."""
    import torch

    from .recover import arch_of, checked_vit_from_onnx

    entry = next((e for e in mf.load(models_dir)["models"] if e["id"] == model_id), None)
    if entry is None:
        raise ExportError(f"{models_dir}/manifest.json has no model '{model_id}'")
    graph = next(f for f in entry["variants"]["fp32"]["files"] if f["role"] == "model")
    model, diff = checked_vit_from_onnx(models_dir / graph["path"], arch_of(entry), entry["labels"])
    h, w = entry["preprocessing"]["size"]
    window = int(entry["config"]["patch_size"])
    res = []
    for p in inputs:
        x = np.fromfile(p, dtype="<f4")
        if x.size != 3 * h * w:
            raise ExportError(f"{p}: {x.size} float32 values, expected 3*{h}*{w}")
        x = x.reshape(3, h, w)
        with torch.no_grad():
            r = model(pixel_values=torch.from_numpy(x)[None], output_attentions=True)
        occ = occlusion_reference(model, x, window)
        res.append({"input": p.name, "probabilities": [float(v) for v in r.logits.double().softmax(-1)[0]],
                    "rollout": [float(v) for v in rollout_reference(torch.stack(tuple(r.attentions), 1)[0].numpy())],
                    "occlusion": {"window": window, "target": occ["target"], "base": occ["base"],
                                  "grid_w": occ["grid_w"], "grid_h": occ["grid_h"],
                                  "drop": [float(v) for v in occ["drop"]]}})
    out.write_text(json.dumps({"parity_rebuilt_vs_onnx": diff, "images": res}) + "\n")
    return out


def run(args: argparse.Namespace) -> dict:
    from .data import shared_dir

    if args.inputs:
        p = references_for_inputs(args.model_id, Path(args.models_dir), list(args.inputs), Path(args.out))
        return {"references": str(p)}
    data = Path(args.data or shared_dir() / "data" / "kermany-cxr-224")
    out = Path(args.out or repo_root() / "tests" / "goldens" / args.model_id / "heatmaps.json")
    p = write_goldens(args.model_id, Path(args.models_dir), data, out, args.per_class, args.seed)
    print(json.dumps({"goldens": str(p)}))
    return {"goldens": str(p)}


def register(subparsers) -> None:
    p = subparsers.add_parser("heatmaps", help="PyTorch references of attention rollout and occlusion on real images",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", dest="model_id", default="pneumonia-vit")
    p.add_argument("--models-dir", type=Path, default=repo_root() / "public" / "models")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--per-class", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inputs", type=Path, nargs="*", default=None,
                   help="raw float32 [3,H,W] model inputs: write references for exactly these to --out")
    p.set_defaults(func=run)
