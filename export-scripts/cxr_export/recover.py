"""The PyTorch module an exported ViT classifier graph came from, rebuilt from the ONNX file itself.

Why: the shipped `pneumonia-vit/model.onnx` is the project's artefact; its training checkpoint lives in an ignored
runs/ folder that a fresh machine does not have. The PyTorch references this project needs after the fact (heatmap
references, the benchmark's PyTorch column, the OOD statistics' cross-check) need the exact same weights, so they are
read back out of the graph and the rebuilt module is checked against ONNX Runtime before it is used.

How: torch.onnx keeps the parameter names of every initializer it does not transform (`m.vit.embeddings.cls_token`,
`m.vit.layers.0.attention.q_proj.bias`, ...). Linear weights are exported transposed as anonymous MatMul
initializers (`onnx::MatMul_668`, [in, out]); each is followed by the Add of its named bias, which names it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ExportError


def initializers_with_aliases(model_proto) -> dict:
    """{name: TensorProto} of the initializers plus the names torch.onnx gives them through Identity nodes (it
    de-duplicates equal tensors, e.g. the all-zero biases of a random init, and names the copies with Identity)."""
    g = model_proto.graph
    inits = {i.name: i for i in g.initializer}
    changed = True
    while changed:
        changed = False
        for n in g.node:
            if n.op_type == "Identity" and n.input and n.input[0] in inits and n.output[0] not in inits:
                inits[n.output[0]] = inits[n.input[0]]
                changed = True
    return inits


def linear_weights(model_proto) -> dict[str, np.ndarray]:
    """{'<module>.weight': [out, in] float32} for every MatMul whose weight is an initializer and whose output is
    added to a named '<module>.bias' initializer (torch.onnx's Linear pattern)."""
    from onnx import numpy_helper

    g = model_proto.graph
    inits = initializers_with_aliases(model_proto)
    consumers: dict[str, list] = {}
    for n in g.node:
        for x in n.input:
            consumers.setdefault(x, []).append(n)
    out: dict[str, np.ndarray] = {}
    for n in g.node:
        if n.op_type != "MatMul" or len(n.input) != 2 or n.input[1] not in inits:
            continue
        w = numpy_helper.to_array(inits[n.input[1]])
        bias = None
        for c in consumers.get(n.output[0], []):
            if c.op_type == "Add":
                others = [x for x in c.input if x != n.output[0]]
                if others and others[0] in inits and others[0].endswith(".bias"):
                    bias = others[0]
        if bias is None:
            raise ExportError(f"MatMul {n.name}: no named bias follows it; cannot name weight {n.input[1]}")
        out[bias[: -len(".bias")] + ".weight"] = np.ascontiguousarray(w.T)
    return out


def vit_from_onnx(onnx_path, arch: dict | None = None, labels=("NORMAL", "PNEUMONIA"), prefix: str = "m."):
    """(ViTForImageClassification in eval mode with eager attention, its state dict as numpy) holding exactly the
    weights of `onnx_path` (a graph written by cxr_export.classifier.export). `arch`: the ViTConfig fields
    (image_size, patch_size, hidden_size, num_hidden_layers, num_attention_heads, intermediate_size, and conv_stem
    for a hybrid, whose stem comes back with its BatchNorms folded: vit.fused_structure); default the
    pneumonia-vit architecture. Raises ExportError when a parameter is missing from the graph or a shape differs."""
    import onnx
    import torch
    from onnx import numpy_helper
    from transformers import ViTForImageClassification

    from .vit import conv_stem_of, fused_structure, vit_config, vit_model

    proto = onnx.load(str(onnx_path))
    named = {k[len(prefix):]: numpy_helper.to_array(v) for k, v in initializers_with_aliases(proto).items()
             if k.startswith(prefix)}
    named.update({k[len(prefix):]: v for k, v in linear_weights(proto).items()})
    arch = dict(arch or {})
    fc1 = named.get("vit.layers.0.mlp.fc1.bias")
    if fc1 is not None:  # the MLP width is in the graph; manifests written before it was recorded lack it
        arch["intermediate_size"] = int(fc1.shape[0])
    config = vit_config(labels=list(labels), **arch)
    config._attn_implementation = "eager"
    if conv_stem_of(config):
        # Hybrid: the graph holds the stem with its BatchNorms folded in (classifier_export.load_model).
        model = fused_structure(vit_model(config)).eval()
    else:
        model = ViTForImageClassification(config).eval()
    sd = model.state_dict()
    missing = [k for k in sd if k not in named]
    if missing:
        raise ExportError(f"{onnx_path}: {len(missing)} parameters not recoverable, e.g. {missing[:3]}")
    new = {}
    for k, ref in sd.items():
        v = named[k]
        if tuple(v.shape) != tuple(ref.shape):
            raise ExportError(f"{onnx_path}: {k} has shape {v.shape} in the graph, {tuple(ref.shape)} in the module")
        new[k] = torch.from_numpy(np.array(v, dtype=np.float32))
    model.load_state_dict(new)
    return model, named


def checked_vit_from_onnx(onnx_path, arch: dict | None = None, labels=("NORMAL", "PNEUMONIA"), atol: float = 1e-4,
                          seed: int = 0):
    """vit_from_onnx, then ONNX Runtime vs the rebuilt module on a seeded N(0,1) batch [2,3,S,S], every output of
    the classifier graph (logits, probabilities, embedding, attentions). Returns (model, max_abs_diff); raises
    ExportError above atol."""
    import torch

    from .classifier import OUTPUTS, wrap
    from .parity import check, run_onnx

    model, _ = vit_from_onnx(onnx_path, arch, labels)
    s = int(model.config.image_size)
    x = np.random.default_rng(seed).standard_normal((2, 3, s, s)).astype(np.float32)
    with torch.no_grad():
        ref = dict(zip(OUTPUTS, (t.numpy() for t in wrap(model)(torch.from_numpy(x)))))
    got = run_onnx(Path(onnx_path), {"pixel_values": x})
    diff = check(ref, {k: got[k] for k in ref if k in got}, atol, name=f"{onnx_path} vs rebuilt PyTorch module")
    return model, diff


def arch_of(entry: dict) -> dict:
    """ViTConfig architecture fields of a manifest classifier entry (card.training.arch, else entry.config)."""
    a = ((entry.get("card") or {}).get("training") or {}).get("arch")
    if a:
        return {k: a[k] for k in ("image_size", "patch_size", "hidden_size", "num_hidden_layers",
                                  "num_attention_heads", "intermediate_size", "conv_stem") if k in a}
    c = entry.get("config") or {}
    size = (entry.get("preprocessing") or {}).get("size", [224, 224])[0]
    return dict(image_size=size, patch_size=c["patch_size"], hidden_size=c["hidden_size"],
                num_hidden_layers=c["num_layers"], num_attention_heads=c["num_heads"],
                intermediate_size=c.get("intermediate_size", 4 * c["hidden_size"]), conv_stem=c.get("conv_stem"))
