"""`cxr-export quantize --id ID --dtype fp16|int8`: adds a reduced-precision variant of an exported model.

Every .onnx graph of the entry's fp32 variant gets a sibling `<stem>.<dtype>.onnx`:
  int8  onnxruntime.quantization.quantize_dynamic (MatMul weights, signed int8, per tensor), activations quantized
        on the fly (DynamicQuantizeLinear + MatMulInteger, which onnxruntime-web runs); or, with --int8-method qdq
        (classifiers, CLIP image towers), quantize_static in QDQ format (per-channel S8S8 weight MatMuls, the
        attention products left float32, activation ranges calibrated (MinMax) on 512 seeded Kermany *train* images
        through the entry's own preprocessing, SmoothQuant where QDQ_SMOOTH_ALPHA says; settings chosen on the
        validation split by `cxr-export quantize-search`): faster on WASM than dynamic and batch-independent;
  fp16  weights and compute in float16 with float32 graph inputs/outputs (a Cast at each end), written by the
        float16 conversion in this file (onnx helpers only; no onnxconverter-common needed). Ops that must stay
        float32 (Resize scales, ...) get Casts around them.
Other files of the fp32 variant (tokenizer, configs) are shared by the new variant. Parity: the new graph vs the fp32
graph, both in ONNX Runtime, on the same seeded input; recorded in the manifest (not enforced below --max-diff, a
sanity bound).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np

from . import manifest as mf
from .errors import ExportError

DTYPES = ("fp16", "int8")
# inputs that ONNX requires in float32 whatever T is: {op_type: input indices}
FLOAT32_ONLY_INPUTS = {"Resize": {2}, "Upsample": {1}}
# ops kept entirely in float32 (inputs cast up, outputs cast down)
KEEP_FP32_OPS = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial"}


def _load(path: Path):
    import onnx

    return onnx.load(str(path), load_external_data=True)


def convert_float_to_float16(model, keep_io_types: bool = True, keep_ops: set[str] = KEEP_FP32_OPS):
    """float32 -> float16 over the whole graph (no subgraph support: If/Loop bodies are left float32)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.ModelProto.FromString(model.SerializeToString())
    g = model.graph
    F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
    for n in g.node:
        if n.op_type in ("If", "Loop", "Scan"):
            raise ExportError(f"fp16: control-flow op {n.op_type} is not supported by this converter")

    def to16(arr):
        return np.clip(arr, -65504, 65504).astype(np.float16)

    for init in g.initializer:
        if init.data_type == F32:
            init.CopyFrom(numpy_helper.from_array(to16(numpy_helper.to_array(init)), init.name))
    new_nodes = []
    counter = [0]

    def uniq(base):
        counter[0] += 1
        return f"{base}__fp16cast{counter[0]}"

    for n in g.node:
        if n.op_type in keep_ops:
            # cast float16 inputs up, outputs down
            for i, name in enumerate(n.input):
                if name:
                    c = uniq(name)
                    new_nodes.append(helper.make_node("Cast", [name], [c], to=F32))
                    n.input[i] = c
            outs = list(n.output)
            for i, name in enumerate(outs):
                c = uniq(name)
                n.output[i] = c
            new_nodes.append(n)
            for c, name in zip(n.output, outs):
                new_nodes.append(helper.make_node("Cast", [c], [name], to=F16))
            continue
        if n.op_type == "Constant":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == F32:
                    a.t.CopyFrom(numpy_helper.from_array(to16(numpy_helper.to_array(a.t)), a.t.name))
                elif a.name == "value_float":
                    raise ExportError("fp16: Constant value_float is not supported")
        elif n.op_type == "ConstantOfShape":
            for a in n.attribute:
                if a.name == "value" and a.t.data_type == F32:
                    a.t.CopyFrom(numpy_helper.from_array(to16(numpy_helper.to_array(a.t)), a.t.name))
        elif n.op_type in ("Cast", "RandomNormalLike", "EyeLike"):
            for a in n.attribute:
                if a.name in ("to", "dtype") and a.i == F32:
                    a.i = F16
        for idx in FLOAT32_ONLY_INPUTS.get(n.op_type, ()):
            if idx < len(n.input) and n.input[idx]:
                c = uniq(n.input[idx])
                new_nodes.append(helper.make_node("Cast", [n.input[idx]], [c], to=F32))
                n.input[idx] = c
        new_nodes.append(n)
    # float32 graph I/O: cast in / cast out
    head, tail = [], []
    if keep_io_types:
        for inp in g.input:
            if inp.type.tensor_type.elem_type == F32:
                c = uniq(inp.name)
                head.append(helper.make_node("Cast", [inp.name], [c], to=F16))
                for n in new_nodes:
                    for i, name in enumerate(n.input):
                        if name == inp.name:
                            n.input[i] = c
        for out in g.output:
            if out.type.tensor_type.elem_type == F32:
                c = uniq(out.name)
                for n in new_nodes:
                    for i, name in enumerate(n.output):
                        if name == out.name:
                            n.output[i] = c
                    for i, name in enumerate(n.input):
                        if name == out.name:
                            n.input[i] = c
                tail.append(helper.make_node("Cast", [c], [out.name], to=F32))
    else:
        for v in list(g.input) + list(g.output):
            if v.type.tensor_type.elem_type == F32:
                v.type.tensor_type.elem_type = F16
    del g.node[:]
    g.node.extend(head + new_nodes + tail)
    del g.value_info[:]
    return model


def sample_feeds(onnx_path: Path, seed: int = 0, dims: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """Seeded feeds from the graph's input metadata: float N(0,1), ints in [0, 8), bool False; symbolic dims 1
    ('batch'-like) or 2, overridable by name through dims."""
    from .parity import session

    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session(onnx_path).get_inputs():
        shape = []
        for d in inp.shape:
            if isinstance(d, int) and d > 0:
                shape.append(d)
            else:
                name = str(d)
                shape.append((dims or {}).get(name, 1 if "batch" in name.lower() or d is None else 2))
        t = inp.type
        if "float" in t:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
        elif "int64" in t:
            feeds[inp.name] = rng.integers(0, 8, size=shape).astype(np.int64)
        elif "int32" in t:
            feeds[inp.name] = rng.integers(0, 8, size=shape).astype(np.int32)
        elif "bool" in t:
            feeds[inp.name] = np.zeros(shape, dtype=bool)
        else:
            raise ExportError(f"{onnx_path}: cannot build a sample for input {inp.name} of type {t}")
    return feeds


class KermanyCalibration:
    """onnxruntime.quantization CalibrationDataReader: n seeded Kermany train images (never test, nor the validation
    part train-classifier held out: data.VAL_FRAC / SPLIT_SEED) through the entry's preprocessing (manifest
    `preprocessing`), fed as pixel_values in batches; `x` [n,3,H,W] holds them all (SmoothQuant reads them too)."""

    def __init__(self, prep: dict, n: int = 512, batch: int = 16, seed: int = 0):
        from .data import SPLIT_SEED, VAL_FRAC
        from .data import kermany_split, shared_dir, stratified_split
        from .images import preprocess_file

        items = kermany_split(shared_dir() / "data" / "kermany-cxr-224", "train")
        train_idx, _ = stratified_split([lab for _, lab in items], VAL_FRAC, SPLIT_SEED)
        rng = np.random.default_rng(seed)
        pick = [items[i][0] for i in sorted(rng.choice(train_idx, size=min(n, len(train_idx)), replace=False))]
        self.x = np.stack([preprocess_file(p, prep) for p in pick])
        self.batches = iter([{"pixel_values": self.x[i:i + batch]} for i in range(0, len(self.x), batch)])

    def get_next(self):
        return next(self.batches, None)


# Static QDQ settings chosen on the validation split by `cxr-export quantize-search` (README "int8"): SmoothQuant
# alpha per model id (None: no smoothing); every other setting is quantize_static.quantize_static_graph's default.
QDQ_SMOOTH_ALPHA = {"pneumonia-vit": 0.5}


def quantize_qdq(src: Path, dst: Path, calibration, smooth_alpha: float | None = None) -> None:
    """Static int8 in QDQ format of the weight MatMuls (per-channel S8S8; the attention products, Softmax, LayerNorm,
    the Gemm heads and the patch Conv stay float32), activation ranges MinMax over the calibration images, after
    SmoothQuant with smooth_alpha if given (quantize_static.quantize_static_graph). onnxruntime-web's CPU EP fuses
    the Q/DQ pairs into int8 MatMuls."""
    from .quantize_static import quantize_static_graph

    quantize_static_graph(src, dst, calibration.x, smooth_alpha=smooth_alpha)


def quantize_file(src: Path, dst: Path, dtype: str, calibration=None, smooth_alpha: float | None = None) -> None:
    """One graph -> its dtype sibling: int8 dynamic, int8 static QDQ when a calibration reader is given, or fp16."""
    from .onnx_utils import save_model

    if dtype == "int8" and calibration is not None:
        quantize_qdq(src, dst, calibration, smooth_alpha)
    elif dtype == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        big = src.stat().st_size + (src.with_name(src.name + ".data").stat().st_size
                                    if src.with_name(src.name + ".data").exists() else 0) > 1_900_000_000
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, op_types_to_quantize=["MatMul"],
                         per_channel=False, use_external_data_format=big,
                         extra_options={"MatMulConstBOnly": True})
        if big:  # quantize_dynamic names the data file after dst; make it `<name>.data`
            wanted = dst.with_name(dst.name + ".data")
            if not wanted.exists():
                model = _load(dst)
                save_model(model, dst)
    elif dtype == "fp16":
        save_model(convert_float_to_float16(_load(src)), dst)
    else:
        raise ExportError(f"unknown dtype {dtype}; use one of {DTYPES}")


def quantize(models_dir, model_id: str, dtype: str, seed: int = 0, max_diff: float | None = None,
             feeds_fn: Callable[[Path], dict[str, np.ndarray]] | None = None, int8_method: str = "dynamic") -> dict:
    """Writes the dtype variant of every graph of model_id's fp32 variant and records it in the manifest.
    int8_method 'qdq' (classifiers only): static QDQ calibrated on Kermany train images (KermanyCalibration)."""
    from .parity import max_abs_diff, run_onnx

    if dtype not in DTYPES:
        raise ExportError(f"unknown --dtype {dtype}; use one of {DTYPES}")
    models_dir = Path(models_dir)
    manifest = mf.load(models_dir)
    entry = next((e for e in manifest.get("models", []) if e.get("id") == model_id), None)
    if entry is None:
        raise ExportError(f"no model {model_id!r} in {models_dir / mf.MANIFEST_NAME} (export it first)")
    base = entry.get("variants", {}).get("fp32")
    if not base:
        raise ExportError(f"{model_id}: no fp32 variant to quantize from")
    if int8_method not in ("dynamic", "qdq"):
        raise ExportError(f"unknown --int8-method {int8_method}; use dynamic or qdq")
    qdq = dtype == "int8" and int8_method == "qdq"
    # symbolic spatial dims at the model's own latent size (a UNet's skip Concats need it divisible by its
    # down-sampling; sample_feeds' default of 2 is not)
    ls = (entry.get("config") or {}).get("latent_size")
    dims = {"height": int(ls), "width": int(ls)} if ls else None
    if qdq and entry.get("family") not in ("classifier", "clip"):
        raise ExportError(f"{model_id}: --int8-method qdq calibrates on X-ray images: classifiers and CLIP image towers")
    calibration = KermanyCalibration(entry["preprocessing"], seed=seed).x if qdq else None
    shared = []  # qdq: graphs without pixel_values (CLIP's text tower) stay float32, their fp32 file shared
    files = []
    # a file the existing variant has of its own (pneumonia-vit's ood.int8.json, fitted on that variant's outputs by
    # `cxr-export ood`) is kept; refit it after replacing the graph
    own = {f["role"]: f for f in (entry["variants"].get(dtype) or {}).get("files", [])
           if not f["path"].endswith(".onnx") and f not in base["files"]}
    worst = 0.0
    written: list[tuple[Path, Path]] = []
    per_graph = {}
    try:
        for rec in base["files"]:
            src = models_dir / rec["path"]
            if src.suffix != ".onnx":
                files.append(own.get(rec["role"], rec))
                continue
            if not src.is_file():
                raise ExportError(f"{src}: listed in the manifest but missing")
            final = src.with_name(f"{src.stem}.{dtype}.onnx")
            tmp = src.with_name(f".{src.stem}.{dtype}.tmp-{os.getpid()}.onnx")
            if qdq and "pixel_values" not in [i.name for i in _load(src).graph.input]:
                shared.append(rec)
                continue
            quantize_file(src, tmp, dtype, _Calib(calibration) if qdq else None, QDQ_SMOOTH_ALPHA.get(model_id))
            written.append((tmp, final))
            feeds = feeds_fn(src) if feeds_fn else sample_feeds(src, seed, dims)
            ref = run_onnx(src, feeds)
            got = run_onnx(tmp, feeds)
            diff = 0.0
            for k, v in ref.items():
                d = max_abs_diff(v, got[k])
                bound = max_diff if max_diff is not None else 0.25 * max(1.0, float(np.max(np.abs(v))) if v.size
                                                                         else 1.0)
                if not d <= bound:
                    raise ExportError(f"{dtype} {final.name}:{k}: max abs diff vs fp32 {d:.3g} exceeds the sanity "
                                      f"bound {bound:.3g}")
                diff = max(diff, d)
            per_graph[final.name] = diff
            worst = max(worst, diff)
        for tmp, final in written:
            os.replace(tmp, final)
            data = tmp.with_name(tmp.name + ".data")
            if data.exists():
                os.replace(data, final.with_name(final.name + ".data"))
    except BaseException:
        for tmp, _ in written:
            for p in (tmp, tmp.with_name(tmp.name + ".data")):
                if p.exists():
                    p.unlink()
        raise
    files.extend(shared)
    for rec in base["files"]:
        src = models_dir / rec["path"]
        if src.suffix == ".onnx" and rec not in shared:
            files.append(mf.file_record(models_dir, src.with_name(f"{src.stem}.{dtype}.onnx"), rec["role"]))
    alpha = QDQ_SMOOTH_ALPHA.get(model_id)
    how = ("onnxruntime quantize_static int8 QDQ (weight MatMuls, per-channel S8S8, MinMax on 512 Kermany train "
           f"images{f', SmoothQuant alpha {alpha}' if alpha else ''}; graphs without pixel_values stay fp32)"
           if qdq else "onnxruntime quantize_dynamic int8 (MatMul weights)" if dtype == "int8"
           else "float16 weights/compute, float32 I/O")
    variant = {"dtype": dtype, "files": files, "parity": mf.parity_record(
        worst, f"ONNX Runtime fp32 graph, same seeded input ({how}); per graph {json.dumps(per_graph)}")}
    if dtype == "int8":
        # app/lib/models/manifest.ts batchCoupled: dynamic activation scales span the batch, so engines run such a
        # graph one image at a time; static QDQ scales are fixed.
        variant["activation_quantization"] = "static" if qdq else "dynamic"
    mf.add_variant(models_dir, model_id, dtype, variant)
    return variant


class _Calib:
    """The calibration images as quantize_qdq takes them (an object with `x`)."""

    def __init__(self, x: np.ndarray):
        self.x = x


def run(args: argparse.Namespace) -> dict:
    v = quantize(args.out_dir, args.model_id, args.dtype, seed=args.seed, max_diff=args.max_diff,
                 int8_method=args.int8_method)
    print(json.dumps({"id": args.model_id, "dtype": args.dtype, "files": [f["path"] for f in v["files"]],
                      "max_abs_diff_vs_fp32": v["parity"]["max_abs_diff"]}))
    return v


def register(subparsers) -> None:
    p = subparsers.add_parser("quantize", help="add an fp16 or int8 variant of an exported model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", dest="model_id", required=True, help="model id in the manifest")
    p.add_argument("--dtype", choices=DTYPES, required=True)
    p.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parents[2] / "public" / "models",
                   help="models root holding manifest.json (default public/models)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--int8-method", choices=["dynamic", "qdq"], default="dynamic",
                   help="int8: dynamic (any graph) or static QDQ calibrated on Kermany train images (classifiers)")
    p.add_argument("--max-diff", type=float, default=None,
                   help="sanity bound on |variant - fp32| (default 0.25 x max(1, max|fp32 output|))")
    p.set_defaults(func=run)
