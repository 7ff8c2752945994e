"""ONNX Runtime vs PyTorch parity helpers shared by every export family."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import ExportError


def max_abs_diff(a, b) -> float:
    """Largest |a - b| over all elements (float64); shapes must match. NaN anywhere gives inf."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ExportError(f"parity: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    d = np.abs(a - b)
    if np.isnan(d).any():
        return float("inf")
    return float(d.max())


_SESSIONS: dict[tuple[str, float, int], object] = {}


def session(path, threads: int = 2):
    """A CPU onnxruntime InferenceSession (cached per path+mtime)."""
    import onnxruntime as ort

    p = Path(path)
    key = (str(p.resolve()), p.stat().st_mtime, threads)
    sess = _SESSIONS.get(key)
    if sess is None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        sess = ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])
        _SESSIONS.clear()
        _SESSIONS[key] = sess
    return sess


def batch_coupled(path) -> bool:
    """True when the graph quantizes activations dynamically (DynamicQuantizeLinear / DynamicQuantizeMatMul: one
    scale over the whole input, batch included), so an image's output depends on its batch mates. References for
    such graphs run one image per call, as the app does (app/lib/models/manifest.ts batchCoupled)."""
    import onnx

    ops = {n.op_type for n in onnx.load(str(path), load_external_data=False).graph.node}
    return bool(ops & {"DynamicQuantizeLinear", "DynamicQuantizeMatMul"})


def run_onnx(path, feeds: Mapping[str, np.ndarray], outputs: list[str] | None = None,
             threads: int = 2) -> dict[str, np.ndarray]:
    """Runs an ONNX graph with onnxruntime (CPU); returns {output name: array}."""
    sess = session(path, threads)
    names = outputs or [o.name for o in sess.get_outputs()]
    res = sess.run(names, {k: np.asarray(v) for k, v in feeds.items()})
    return dict(zip(names, res))


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy() if x.is_floating_point() else x.detach().cpu().numpy()
    return np.asarray(x)


def check(torch_outputs: Mapping, onnx_outputs: Mapping, atol: float, name: str = "model") -> float:
    """Compares every output present in torch_outputs with the ONNX one of the same name; raises ExportError when
    any max abs diff exceeds atol (or an output is missing); returns the largest diff."""
    worst = 0.0
    for key, ref in torch_outputs.items():
        if key not in onnx_outputs:
            raise ExportError(f"parity failed for {name}: ONNX output '{key}' missing (have {sorted(onnx_outputs)})")
        diff = max_abs_diff(_np(ref), _np(onnx_outputs[key]))
        if not diff <= atol:
            raise ExportError(f"parity failed for {name}:{key}: max abs diff {diff:.3g} > atol {atol:.3g}")
        worst = max(worst, diff)
    return worst
