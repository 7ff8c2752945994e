"""torch -> ONNX export, atomic output folders and the torch device, shared by every export family."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Iterator

OPSET = 17
TWO_GB = 2_000_000_000


def device():
    """cuda when available, else cpu."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def export(module, args: tuple, path, input_names: list[str], output_names: list[str],
           dynamic_axes: dict | None = None, opset: int = OPSET) -> Path:
    """Exports `module(*args)` to `path` with the TorchScript exporter (torch.onnx.export(..., dynamo=False),
    opset 17, constant folding). Graphs over 2 GB are re-saved with one external-data file `<name>.onnx.data`.
    Returns path."""
    import onnx
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = getattr(module, "training", False)
    module = module.eval()
    before = set(path.parent.iterdir())
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(module, tuple(args), str(path), input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=dynamic_axes or {},
                              opset_version=opset, do_constant_folding=True, dynamo=False)
    finally:
        if was_training:
            module.train()
    # >2 GB: the TorchScript exporter scatters one file per tensor; gather them into `<name>.onnx.data`.
    leftovers = [p for p in set(path.parent.iterdir()) - before if p != path and p.is_file()]
    total = path.stat().st_size + sum(p.stat().st_size for p in leftovers)
    if leftovers or total > TWO_GB:
        model = onnx.load(str(path), load_external_data=True)
        for p in leftovers:
            p.unlink()
        data = path.with_name(path.name + ".data")
        if data.exists():
            data.unlink()
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data.name, size_threshold=1024)
    return path


def save_model(model, path) -> Path:
    """onnx.save with external data `<name>.onnx.data` when the proto is too large for one file."""
    import onnx

    path = Path(path)
    if model.ByteSize() > TWO_GB:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=path.name + ".data", size_threshold=1024)
    else:
        onnx.save_model(model, str(path))
    return path


@contextlib.contextmanager
def atomic_dir(final_dir) -> Iterator[Path]:
    """Yields a fresh temporary folder beside final_dir (pre-filled with nothing); on success it replaces
    final_dir, on any error it is removed, so a failed job never leaves a half-written folder."""
    final_dir = Path(final_dir)
    final_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final_dir.parent, prefix=f".{final_dir.name}.tmp-"))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if final_dir.exists():
        old = final_dir.with_name(f".{final_dir.name}.old-{os.getpid()}")
        if old.exists():
            shutil.rmtree(old, ignore_errors=True)
        os.replace(final_dir, old)
    os.replace(tmp, final_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
