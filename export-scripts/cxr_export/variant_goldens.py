"""`cxr-export variant-goldens`: references for the quantized variants of a classifier, so that the browser parity
test covers every variant the app can choose.

An int8 (dynamic, ONNX Runtime quantize_dynamic) or fp16 graph has no PyTorch module; its reference is native ONNX
Runtime (CPU) running that same graph on the app's preprocessing of the same real test images as the fp32 goldens
(tests/goldens/<id>/test-images.json). Writes tests/goldens/<id>/test-images.<dtype>.json with the ORT
probabilities and, for the record, the max difference to the PyTorch fp32 probabilities.
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


def write(model_id: str, models_dir: Path, data_root: Path, goldens_dir: Path, dtypes: list[str]) -> list[Path]:
    from .classifier import preprocess_file
    from .parity import run_onnx

    entry = next((e for e in mf.load(models_dir)["models"] if e["id"] == model_id), None)
    if entry is None:
        raise ExportError(f"{models_dir}/manifest.json has no model '{model_id}'")
    base = json.loads((goldens_dir / "test-images.json").read_text())
    prep = base["preprocessing"]
    x = np.stack([preprocess_file(Path(data_root) / g["path"], prep) for g in base["images"]])
    ref = np.array([g["probabilities"] for g in base["images"]])
    out = []
    for dtype in dtypes:
        variant = entry["variants"].get(dtype)
        if not variant:
            continue
        f = next(x for x in variant["files"] if x["role"] == "model")
        # One image per run, as the app runs an int8 variant with dynamic activation scales (one scale per input
        # tensor, batch included: a batch would make each image's reference depend on its batch mates).
        probs = np.concatenate([run_onnx(models_dir / f["path"], {"pixel_values": x[i:i + 1]},
                                         outputs=["probabilities"])["probabilities"] for i in range(len(x))])
        doc = {"model": model_id, "dtype": dtype, "graph": f["path"], "sha256": f["sha256"],
               "reference": f"onnxruntime CPU (Python) on {f['path']}, one image per run, PIL-decoded images, the app's "
                              "preprocessing",
               "max_abs_diff_to_pytorch_fp32": float(np.abs(probs - ref).max()),
               "labels": base["labels"], "preprocessing": prep,
               "images": [{"path": g["path"], "label": g["label"], "probabilities": [float(v) for v in p]}
                          for g, p in zip(base["images"], probs)]}
        path = goldens_dir / f"test-images.{dtype}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n")
        out.append(path)
        print(json.dumps({"dtype": dtype, "golden": str(path), "max_abs_diff_to_pytorch_fp32":
                          doc["max_abs_diff_to_pytorch_fp32"]}), flush=True)
    return out


def run(args: argparse.Namespace) -> list[Path]:
    from .data import shared_dir

    data = Path(args.data or shared_dir() / "data" / "kermany-cxr-224")
    gdir = Path(args.goldens_dir or repo_root() / "tests" / "goldens" / args.model_id)
    return write(args.model_id, Path(args.models_dir), data, gdir, args.dtypes)


def register(subparsers) -> None:
    p = subparsers.add_parser("variant-goldens", help="ONNX Runtime references of a classifier's quantized variants",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", dest="model_id", default="pneumonia-vit")
    p.add_argument("--models-dir", type=Path, default=repo_root() / "public" / "models")
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--goldens-dir", type=Path, default=None)
    p.add_argument("--dtypes", nargs="+", default=["int8", "fp16"])
    p.set_defaults(func=run)
