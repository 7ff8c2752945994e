"""SmoothQuant for the project's ViT graphs (Xiao et al. 2023, "SmoothQuant: Accurate and Efficient Post-Training
Quantization for Large Language Models", eq. 4): an exact float rewrite that moves the per-channel outliers of a
MatMul's activation X into its weight W, X W = (X diag(s)^-1)(diag(s) W), so that one per-tensor int8 activation
scale fits X better. s_j = max|X_j|^alpha / max|W_j,:|^(1-alpha), max|X_j| measured on calibration images.

Where diag(s)^-1 can be folded into the op that produces X without changing the graph's function:
  LayerNormalization -> q/k/v (or fc1) MatMuls: the LayerNorm's gamma and beta are divided by s;
  v_proj -> attention -> o_proj: each attention output channel is a convex combination (softmax weights) of the same
  v channel, so v_proj's weight columns and bias are divided by s and o_proj's weight rows multiplied by it.
fc2 (after GELU, not homogeneous) is left as it is.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ExportError


def _graph_maps(model):
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consumers: dict[str, list] = {}
    producer = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
        for o in n.output:
            producer[o] = n
    return inits, consumers, producer


def _weight_matmuls(names, consumers, inits):
    return [n for name in names for n in consumers.get(name, [])
            if n.op_type == "MatMul" and n.input[1] in inits]


def smooth_groups(model) -> list[dict]:
    """[{'x': activation name, 'matmuls': [MatMul nodes fed by x], 'kind': 'layernorm'|'v_o', ...}] of the graph."""
    inits, consumers, producer = _graph_maps(model)
    groups = []
    for n in model.graph.node:
        if n.op_type != "LayerNormalization" or len(n.input) < 3:
            continue
        mms = _weight_matmuls([n.output[0]], consumers, inits)
        others = [c for c in consumers.get(n.output[0], []) if c not in mms and c.op_type != "Shape"]
        if mms and not others:
            groups.append({"x": n.output[0], "matmuls": mms, "kind": "layernorm", "ln": n})
    for n in model.graph.node:
        if n.op_type == "MatMul" and n.input[1] in inits and n.name.endswith("o_proj/MatMul"):
            v_mm = next((m for m in model.graph.node if m.op_type == "MatMul"
                         and m.name == n.name.replace("o_proj/MatMul", "v_proj/MatMul")), None)
            v_add = next((c for c in consumers.get(v_mm.output[0], []) if c.op_type == "Add"), None) if v_mm else None
            if v_mm is None or v_add is None:
                continue
            groups.append({"x": n.input[0], "matmuls": [n], "kind": "v_o", "v_mm": v_mm, "v_add": v_add})
    return groups


def activation_absmax(model_path: Path, names: list[str], x: np.ndarray, batch: int = 16) -> dict[str, np.ndarray]:
    """Per-channel (last axis) max |activation| of each named tensor over the images x [N,3,H,W] (ONNX Runtime)."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    have = {o.name for o in model.graph.output}
    for name in names:
        if name not in have:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    s = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
    out = {n: None for n in names}
    for i in range(0, len(x), batch):
        for n, v in zip(names, s.run(names, {"pixel_values": x[i:i + batch]})):
            m = np.abs(v).reshape(-1, v.shape[-1]).max(0)
            out[n] = m if out[n] is None else np.maximum(out[n], m)
    return out


def smooth(src: Path, dst: Path, calib_x: np.ndarray, alpha: float = 0.5, kinds=("layernorm", "v_o")) -> int:
    """Writes the smoothed float graph of src to dst; returns the number of smoothed groups. The rewrite is exact in
    real arithmetic (float rounding only: check with parity)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits, consumers, producer = _graph_maps(model)
    groups = [g for g in smooth_groups(model) if g["kind"] in kinds]
    if not groups:
        raise ExportError(f"{src}: no LayerNorm->MatMul or v_proj->o_proj pattern to smooth")
    amax = activation_absmax(src, [g["x"] for g in groups], calib_x)

    uses: dict[str, int] = {}
    for n in model.graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1

    def own(node, k: int) -> str:
        """The initializer of node.input[k], first copied under a new name if another input uses it too (the
        exporter shares equal constants, e.g. LayerNorm weights of ones): smoothing must change this op only."""
        name = node.input[k]
        if name not in inits and name in producer and producer[name].op_type == "Identity":
            name = producer[name].input[0]  # the exporter's Identity over a shared parameter
            uses[name] = uses.get(name, 0) + 1
        if name not in inits:
            raise ExportError(f"{src}: {node.name} input {k} ({node.input[k]}) is not an initializer")
        if uses[name] > 1 or name != node.input[k]:
            uses[name] -= 1
            new = f"{name}__smooth_{node.name}"
            inits[new] = model.graph.initializer.add()
            inits[new].CopyFrom(numpy_helper.from_array(numpy_helper.to_array(inits[name]), new))
            node.input[k] = new
            uses[new] = 1
            name = new
        return name

    def arr(name):
        return numpy_helper.to_array(inits[name]).astype(np.float32)

    def put(name, a):
        inits[name].CopyFrom(numpy_helper.from_array(a.astype(np.float32), name))

    for g in groups:
        ws = [arr(own(m, 1)) for m in g["matmuls"]]
        wmax = np.max([np.abs(w).max(1) for w in ws], axis=0)
        s = np.power(np.maximum(amax[g["x"]], 1e-5), alpha) / np.power(np.maximum(wmax, 1e-5), 1 - alpha)
        s = np.clip(s, 1e-3, 1e3).astype(np.float32)
        for m, w in zip(g["matmuls"], ws):
            put(m.input[1], w * s[:, None])
        if g["kind"] == "layernorm":
            for k in (1, 2):
                name = own(g["ln"], k)
                put(name, arr(name) / s)
        else:
            name = own(g["v_mm"], 1)
            put(name, arr(name) / s[None, :])
            k = next(k for k, i in enumerate(g["v_add"].input) if i != g["v_mm"].output[0])
            b = own(g["v_add"], k)
            put(b, arr(b) / s)
    onnx.save(model, str(dst))
    return len(groups)
