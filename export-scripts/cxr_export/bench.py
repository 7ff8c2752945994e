"""`cxr-export bench`: the native side of `npm run bench` (scripts/bench/run.ts drives it).

Two sub-actions, both on graphs listed in a JSON spec written by the driver from the manifest:

- `feeds`: seeded inputs for every graph at batch 1 and at the app's batch (quantize.sample_feeds, symbolic batch
  dimensions set), written as raw little-endian files + a JSON index, so that onnxruntime-web (Node), native
  onnxruntime and PyTorch all run the very same tensors.
- `child --backend ort|torch`: one graph on one backend in this (fresh) process: cold session creation / module
  build, first run, warm p50/p95 over a fixed count at batch 1, throughput at batch 1 and at the app's batch, and
  peak resident memory (VmHWM) over the process's baseline after imports. Prints one JSON line.

PyTorch modules: the classifier graphs are rebuilt from the ONNX file (cxr_export.recover); the random fixtures of
clip, sam and sd are rebuilt from their seed with the same builders `cxr-export fixtures` uses. Every rebuilt module
is checked against ONNX Runtime on the bench inputs first; when it is not the graph's module (e.g. a family has been
re-trained since), the PyTorch column says so instead of timing another model.

This module holds feeds, timing and the child (and the CLI) and re-exports the parts: bench_torch.py (the PyTorch
modules), bench_levers.py (lever and full-size graphs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np

from .errors import ExportError
from .bench_torch import torch_callable
from .bench_levers import prepare_levers, export_full


DTYPE_NP = {"float32": np.float32, "int64": np.int64, "int32": np.int32, "bool": np.bool_, "float16": np.float16}


def vm_kib(field: str) -> int:
    """VmHWM / VmRSS of this process in KiB (Linux /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def write_feeds(spec: dict, out_dir: Path) -> dict:
    """For each graph of the spec: feeds at batch 1 and at its app batch as <out>/<key>-b<N>-<input>.bin."""
    from .quantize import sample_feeds

    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    for g in spec["graphs"]:
        entry = {}
        cfg = (g.get("entry") or {}).get("config") or {}
        # Symbolic spatial dims at the model's own size: a UNet's skip Concats need latents divisible by its
        # down-sampling (the default of 2 is not), a VAE decoder its latent_size.
        spatial = int(cfg.get("latent_size") or 8)
        for b in sorted({1, int(g.get("app_batch", 1))}):
            feeds = sample_feeds(Path(g["path"]), seed=0, dims={"batch": b, "batch_size": b, "N": b,
                                                                "height": spatial, "width": spatial})
            if "orig_im_size" in feeds:
                # segment-anything's ONNX decoder resizes its masks to orig_im_size (H, W): a random value would be
                # a size of 0 or less (scripts/export_onnx_model.py); give it the encoder's input size.
                side = float(cfg.get("image_size") or 1024)
                feeds["orig_im_size"] = np.array([side, side], dtype=feeds["orig_im_size"].dtype)
            if "has_mask_input" in feeds:
                feeds["has_mask_input"] = np.ones_like(feeds["has_mask_input"])
            dyn = _dynamic_batch(Path(g["path"]))
            if b > 1 and not dyn:
                continue
            items = {}
            for name, arr in feeds.items():
                f = out_dir / f"{g['key']}-b{b}-{name}.bin".replace("/", "_")
                np.ascontiguousarray(arr).tofile(f)
                items[name] = {"file": str(f), "dims": list(arr.shape), "dtype": str(arr.dtype)}
            entry[str(b)] = items
        index[g["key"]] = entry
    (out_dir / "feeds.json").write_text(json.dumps(index, indent=1))
    return index


def _dynamic_batch(path: Path) -> bool:
    from .parity import session

    ins = session(path).get_inputs()
    return all(not isinstance(i.shape[0], int) for i in ins if len(i.shape) > 0) if ins else False


def load_feeds(items: dict) -> dict[str, np.ndarray]:
    return {k: np.fromfile(v["file"], dtype=DTYPE_NP[v["dtype"]]).reshape(v["dims"]) for k, v in items.items()}


def _percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * q
    lo, hi = int(np.floor(k)), int(np.ceil(k))
    return float(s[lo] + (s[hi] - s[lo]) * (k - lo))


def time_runs(fn, feeds_by_batch: dict[str, dict], warm: int, batch_iters: int) -> dict:
    """first run (batch 1), warm p50/p95 over `warm` runs at batch 1, images/s at each batch."""
    f1 = feeds_by_batch["1"]
    t0 = time.perf_counter()
    out = fn(f1)
    first = (time.perf_counter() - t0) * 1000
    times = []
    for _ in range(warm):
        t0 = time.perf_counter()
        fn(f1)
        times.append((time.perf_counter() - t0) * 1000)
    res = {"first_run_ms": first, "warm_p50_ms": statistics.median(times), "warm_p95_ms": _percentile(times, 0.95),
           "warm_min_ms": min(times), "warm_runs": warm, "throughput": {"1": 1000.0 / statistics.median(times)}}
    for b, feeds in feeds_by_batch.items():
        if b == "1":
            continue
        fn(feeds)  # warm the larger shapes
        ts = []
        for _ in range(batch_iters):
            t0 = time.perf_counter()
            fn(feeds)
            ts.append((time.perf_counter() - t0) * 1000)
        res["throughput"][b] = int(b) * 1000.0 / statistics.median(ts)
        res[f"batch{b}_p50_ms"] = statistics.median(ts)
        res[f"batch{b}_min_ms"] = min(ts)
    return res, out


def child(g: dict, feeds_index: dict, backend: str, threads: int, warm: int, batch_iters: int) -> dict:
    feeds_by_batch = {b: load_feeds(items) for b, items in feeds_index[g["key"]].items()}
    if backend == "ort":
        import onnxruntime as ort

        base = vm_kib("VmRSS")
        t0 = time.perf_counter()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(g["path"], opts, providers=["CPUExecutionProvider"])
        create = (time.perf_counter() - t0) * 1000
        names = [o.name for o in sess.get_outputs()]

        def fn(feeds):
            return dict(zip(names, sess.run(names, feeds)))

        res, out = time_runs(fn, feeds_by_batch, warm, batch_iters)
        res.update({"backend": "onnxruntime", "version": ort.__version__, "cold_create_ms": create})
    elif backend in ("torch", "torch-cuda"):
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        device = "cuda" if backend == "torch-cuda" else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ExportError("torch.cuda.is_available() is False: no CUDA device here")
        base = vm_kib("VmRSS")
        t0 = time.perf_counter()
        fn, what = torch_callable(g, device)
        create = (time.perf_counter() - t0) * 1000
        from .parity import max_abs_diff, run_onnx

        f1 = feeds_by_batch["1"]
        ref = run_onnx(Path(g["path"]), f1, threads=threads)
        got = fn(f1)
        diff = max(max_abs_diff(got[k], ref[k]) for k in got if k in ref)
        scale = max(float(np.abs(ref[k]).max()) for k in got if k in ref)
        if not diff <= 1e-3 * max(1.0, scale):
            raise ExportError(f"rebuilt module is not this graph's (max abs diff {diff:.3g} to ONNX Runtime)")
        res, out = time_runs(fn, feeds_by_batch, warm, batch_iters)
        res.update({"backend": "pytorch" if device == "cpu" else f"pytorch cuda ({torch.cuda.get_device_name(0)})",
                    "version": torch.__version__, "cold_create_ms": create, "module": what,
                    "parity_vs_onnxruntime": diff})
        if device == "cuda":
            res["peak_cuda_mib"] = torch.cuda.max_memory_allocated() / 2 ** 20
    else:
        raise ExportError(f"unknown backend {backend}")
    res["threads"] = threads
    res["peak_rss_mib"] = vm_kib("VmHWM") / 1024
    res["baseline_rss_mib"] = base / 1024
    return res


def run(args: argparse.Namespace) -> dict:
    if args.action == "full":
        res = export_full(Path(args.out))
        print(json.dumps(res))
        return res
    spec = json.loads(Path(args.spec).read_text())
    if args.action == "levers":
        res = prepare_levers(spec, args.key, Path(args.out), args.threads)
        print(json.dumps(res))
        return res
    if args.action == "feeds":
        idx = write_feeds(spec, Path(args.out))
        print(json.dumps({"feeds": str(Path(args.out) / "feeds.json"), "graphs": len(idx)}))
        return idx
    feeds_index = json.loads(Path(args.feeds).read_text())
    g = next((x for x in spec["graphs"] if x["key"] == args.key), None)
    if g is None:
        raise ExportError(f"no graph {args.key} in {args.spec}")
    try:
        res = child(g, feeds_index, args.backend, args.threads, args.warm, args.batch_iters)
    except ExportError as exc:
        res = {"backend": {"torch": "pytorch", "torch-cuda": "pytorch cuda"}.get(args.backend, "onnxruntime"),
               "unavailable": str(exc)}
    print("BENCH " + json.dumps(res), flush=True)
    return res


def register(subparsers) -> None:
    p = subparsers.add_parser("bench", help="native side of `npm run bench` (onnxruntime and PyTorch timings)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["feeds", "child", "levers", "full"])
    p.add_argument("--spec", type=Path, required=True, help="graphs JSON written by scripts/bench/run.ts")
    p.add_argument("--out", type=Path, default=None, help="feeds: output folder")
    p.add_argument("--feeds", type=Path, default=None, help="child: feeds.json")
    p.add_argument("--key", default=None, help="child: the graph's key")
    p.add_argument("--backend", choices=["ort", "torch", "torch-cuda"], default="ort")
    p.add_argument("--threads", type=int, default=int(os.environ.get("CXR_BENCH_THREADS", "2")))
    p.add_argument("--warm", type=int, default=20)
    p.add_argument("--batch-iters", type=int, default=5)
    p.set_defaults(func=run)
