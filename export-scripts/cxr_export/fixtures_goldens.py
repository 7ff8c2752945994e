"""Golden files of `cxr-export fixtures` (fixtures.py): a tensor as base64 float32 with its shape, one golden JSON
per case, and the golden of a graph run with ONNX Runtime on given feeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .clip import run_onnx


def tensor(arr) -> dict[str, Any]:
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return {"dims": list(a.shape), "dtype": "int64", "data": [int(v) for v in a.reshape(-1)]}
    a = a.astype(np.float32)
    # 9 significant digits round-trip float32 exactly; fixed formatting keeps the bytes reproducible
    return {"dims": list(a.shape), "dtype": "float32", "data": [float(f"{v:.9g}") for v in a.reshape(-1).tolist()]}


def write_golden(path: Path, inputs: dict, outputs: dict, meta: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"inputs": {k: tensor(v) for k, v in inputs.items()},
           "outputs": {k: tensor(v) for k, v in outputs.items()}, "meta": meta}
    path.write_text(json.dumps(doc, separators=(",", ":"), sort_keys=False) + "\n")
    return path


def graph_golden(gdir: Path, name: str, onnx_path: Path, feeds: dict[str, np.ndarray],
                 torch_fn: Callable[[dict], dict] | None, meta: dict | None = None) -> float:
    """Runs the ONNX graph on feeds, writes gdir/name.json, returns max |onnx - torch| (when torch_fn given)."""
    out = run_onnx(onnx_path, feeds)
    diff = 0.0
    if torch_fn is not None:
        ref = torch_fn(feeds)
        diff = max(float(np.max(np.abs(np.asarray(ref[k], np.float64) - out[k]))) for k in ref)
    # a power-of-ten bound, not the exact value, so the bytes do not depend on the torch thread count
    bound = float(f"1e{int(np.ceil(np.log10(diff)))}") if diff > 0 else 0.0
    write_golden(gdir / f"{name}.json", feeds, out, {"graph": onnx_path.name, "torch_max_abs_diff_at_most": bound,
                                                      "atol": 1e-4, **(meta or {})})
    return diff
