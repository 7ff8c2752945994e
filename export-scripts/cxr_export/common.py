"""Helpers every export family shares: torch threads and seeding, ONNX export / run / parity check, JSON writing,
the models folder and the common CLI arguments. (Moved from clip.py, which re-exports them for old imports.)"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError
from .onnx_utils import atomic_dir  # noqa: F401  (re-exported: families import it from here)
from .parity import max_abs_diff

__all__ = ["add_common_args", "atomic_dir", "check_parity", "export_onnx", "models_dir_default", "run_onnx",
           "load_ckpt", "save_ckpt", "seed_all", "torch_threads", "write_json"]
# ----------------------------------------------------------------------------------------------------------------



def torch_threads(*modules) -> None:
    """At most 2 torch threads ($CXR_TORCH_THREADS); 1 for tiny models (< 5M parameters), where a second thread only
    adds synchronisation (several times slower on a busy 2-core machine)."""
    import torch

    n = max(1, min(2, int(os.environ.get("CXR_TORCH_THREADS", "2"))))
    if modules and sum(p.numel() for m in modules for p in m.parameters()) < 5_000_000:
        n = 1
    torch.set_num_threads(n)


def export_onnx(module, args: tuple, path: Path, input_names: list[str], output_names: list[str],
                dynamic_axes: dict | None = None) -> Path:
    """torch -> ONNX (TorchScript exporter, opset 17; >2 GB graphs get one `<name>.onnx.data`)."""
    import torch

    from .onnx_utils import export

    # nn.MultiheadAttention's fused inference path (open_clip towers) has no ONNX symbolic: trace the plain path
    fast = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        return export(module.eval(), args, path, input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast)


def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    from .parity import run_onnx as _run

    return _run(path, feeds)


def check_parity(name: str, torch_out: dict[str, np.ndarray], onnx_out: dict[str, np.ndarray], atol: float,
                 rtol: float = 0.0) -> float:
    """Max abs diff over the outputs; raises ExportError past atol + rtol * max|reference|."""
    worst = 0.0
    for key, ref in torch_out.items():
        if key not in onnx_out:
            raise ExportError(f"parity failed for {name}: ONNX output {key!r} missing")
        diff = max_abs_diff(ref, onnx_out[key])
        limit = atol + rtol * float(np.max(np.abs(ref))) if np.size(ref) else atol
        if not diff <= limit:
            raise ExportError(f"parity failed for {name}:{key}: max abs diff {diff:.3g} > {limit:.3g} "
                              f"(atol {atol:g} + rtol {rtol:g} x max|ref| {float(np.max(np.abs(ref))):.3g})")
        worst = max(worst, diff)
    return worst


def write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def models_dir_default() -> Path:
    return Path(__file__).resolve().parents[2] / "public" / "models"


def add_common_args(p: argparse.ArgumentParser, default_id: str) -> None:
    p.add_argument("--out-dir", type=Path, default=models_dir_default(),
                   help="models root holding manifest.json (default: public/models)")
    p.add_argument("--id", dest="model_id", default=default_id, help=f"model id / folder name (default {default_id})")
    p.add_argument("--random-init", action="store_true", help="random weights, architecture built offline")
    p.add_argument("--size", choices=["tiny", "full"], default="full", help="with --random-init: tiny or full size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--atol", type=float, default=1e-4, help="ONNX vs PyTorch parity tolerance")


def seed_all(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def save_ckpt(path: Path, obj: dict) -> None:
    """torch.save to a temporary sibling, then os.replace: a killed run never leaves a torn checkpoint (the resume
    state of train-classifier, train-generator and train-segmenter)."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_ckpt(path: Path) -> dict | None:
    """What save_ckpt wrote, on the CPU, or None when there is no such file."""
    import torch

    path = Path(path)
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None
