"""Graphs for the WASM levers and full-size runs of `cxr-export bench` (bench.py): the lever variants that
scripts/bench/run.ts --levers times, and full-size random exports (--full)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def prepare_levers(spec: dict, key: str, out: Path, threads: int) -> dict:
    """The classifier graph and its lever variants: an offline-optimised saved model (ORT_ENABLE_EXTENDED, what
    onnxruntime writes with optimized_model_filepath), the shipped dynamic int8 model and a static QDQ int8 model
    (per-channel S8S8, calibrated on 64 real Kermany train images); feeds at batch 1, 8, 16, 32."""
    import onnxruntime as ort

    from .quantize import QDQ_SMOOTH_ALPHA, KermanyCalibration, quantize_qdq

    out.mkdir(parents=True, exist_ok=True)
    g = next(x for x in spec["graphs"] if x["key"] == key)
    graphs = {"fp32": g["path"]}
    from .quantize import quantize_file

    dyn = out / "model.int8-dynamic.onnx"  # the shipped int8 is static QDQ now: dynamic is made here to compare
    quantize_file(Path(g["path"]), dyn, "int8")
    graphs["int8-dynamic"] = str(dyn)
    opt = out / "model.optimized-extended.onnx"
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(opt)
    so.intra_op_num_threads = threads
    ort.InferenceSession(g["path"], so, providers=["CPUExecutionProvider"])
    graphs["fp32-optimized"] = str(opt)
    qdq = out / "model.int8-qdq.onnx"
    quantize_qdq(Path(g["path"]), qdq, KermanyCalibration(g["entry"]["preprocessing"]),
                 QDQ_SMOOTH_ALPHA.get(g["entry"]["id"]))
    graphs["int8-qdq"] = str(qdq)
    lspec = {"graphs": [{**g, "key": name, "path": p, "dtype": "fp32" if name.startswith("fp32") else "int8",
                         "app_batch": 8} for name, p in graphs.items()]}
    (out / "graphs.json").write_text(json.dumps(lspec))
    index = {}
    for name, p in graphs.items():
        index[name] = {}
        for b in (1, 8, 16, 32):
            from .quantize import sample_feeds

            feeds = sample_feeds(Path(p), seed=0, dims={"batch": b})
            items = {}
            for n, arr in feeds.items():
                f = out / f"{name}-b{b}-{n}.bin"
                np.ascontiguousarray(arr).tofile(f)
                items[n] = {"file": str(f), "dims": list(arr.shape), "dtype": str(arr.dtype)}
            index[name][str(b)] = items
    (out / "feeds.json").write_text(json.dumps(index))
    return {"graphs": [{"name": n, "path": p} for n, p in graphs.items()], "spec": str(out / "graphs.json"),
            "feeds": str(out / "feeds.json")}


def export_full(out: Path) -> dict:
    """Full-size random architectures for --full: ViT-B/16 classifier, BiomedCLIP (ViT-B/16 + PubMedBERT) and SAM
    ViT-B, into out (a models folder with its own manifest). SD 1.5 is left out: its fp32 UNet alone is 3.4 GB and
    its export takes longer than a bench run should on a CPU machine (`cxr-export sd --random-init --size full`
    writes it when wanted; point --models-dir at it)."""
    import subprocess
    import sys

    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for args, mid in ((["classifier", "--random-init", "--size", "full", "--id", "vit-b16-random"], "vit-b16-random"),
                      (["clip", "--random-init", "--size", "full", "--id", "biomedclip-random"], "biomedclip-random"),
                      (["sam", "--arch", "sam-vit-b", "--random-init", "--size", "full", "--id", "sam-vit-b-random"],
                       "sam-vit-b-random")):
        if (out / mid).is_dir():
            done[mid] = "exists"
            continue
        # a subprocess, not cli.main: bench is itself a cli subcommand (no import cycle)
        done[mid] = subprocess.run([sys.executable, "-m", "cxr_export", *args, "--out-dir", str(out)]).returncode
    return done
