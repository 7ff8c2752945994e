"""Loading and ONNX export for `cxr-export classifier` (classifier.py): a ViTForImageClassification checkpoint (or a
random one for fixtures), its preprocessing and labels, the wrapper that adds probabilities, the embedding and
every layer's attentions as outputs, and export, which writes model.onnx and checks it against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .checkpoints import transformers_config
from .errors import ExportError


RESAMPLE = {2: "bilinear", 3: "bicubic", "bilinear": "bilinear", "bicubic": "bicubic"}


def random_config(size: str, labels=("NORMAL", "PNEUMONIA")):
    from .vit import vit_config

    if size == "full":  # ViT-B/16 224
        arch = dict(image_size=224, patch_size=16, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                    intermediate_size=3072)
    elif size == "tiny":
        arch = dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64)
    elif size == "pneumonia-vit":  # the architecture train-classifier trains
        arch = {}
    else:
        raise ExportError(f"unknown --size {size}")
    return vit_config(labels=list(labels), **arch)


def load_model(checkpoint=None, size: str = "tiny", seed: int = 0):
    """(model in eval mode with eager attention, preprocessor dict or None)."""
    import torch
    from transformers import ViTForImageClassification

    if checkpoint is None:
        torch.manual_seed(seed)
        config = random_config(size)
        config._attn_implementation = "eager"
        model = ViTForImageClassification(config)
        return model.eval(), None
    ck, _ = transformers_config(checkpoint, ("vit",), what="ViTForImageClassification")
    try:
        from .vit import conv_stem_of, fuse_batchnorm, load_vit

        model = load_vit(ck)
    except Exception as exc:
        raise ExportError(f"--checkpoint {ck}: could not load ViTForImageClassification: {exc}") from exc
    if conv_stem_of(model.config):
        # Hybrid: its BatchNorms folded into the convolutions first, so that the graph's stem weights keep their
        # names (vit.fuse_batchnorm) and recover.py can read them back; eval-mode numerics are unchanged.
        fuse_batchnorm(model)
    pre = None
    if (ck / "preprocessor_config.json").is_file():
        pre = json.loads((ck / "preprocessor_config.json").read_text())
    return model.eval(), pre


def preprocessing_of(model, pre: dict | None) -> dict:
    """The manifest Preprocessing block from an image processor config (ViT defaults when absent)."""
    s = int(model.config.image_size)
    size = [s, s]
    mean, std, resample = [0.5, 0.5, 0.5], [0.5, 0.5, 0.5], "bilinear"
    if pre:
        sz = pre.get("size")
        if isinstance(sz, dict) and "height" in sz:
            size = [int(sz["height"]), int(sz["width"])]
        elif isinstance(sz, dict) and "shortest_edge" in sz:
            size = [int(sz["shortest_edge"])] * 2
        elif isinstance(sz, int):
            size = [sz, sz]
        mean = [float(v) for v in pre.get("image_mean", mean)]
        std = [float(v) for v in pre.get("image_std", std)]
        resample = RESAMPLE.get(pre.get("resample", 2), "bilinear")
    if size != [s, s]:
        raise ExportError(f"preprocessor size {size} differs from the model's image_size {s}")
    return {"size": size, "resize": resample, "mean": mean, "std": std, "layout": "NCHW"}


def labels_of(model) -> list[str]:
    id2label = model.config.id2label
    return [str(id2label[i]) for i in range(len(id2label))]


def wrap(model):
    import torch

    class ViTClassifierGraph(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixel_values):
            out = self.m.vit(pixel_values, output_attentions=True)
            cls = out.last_hidden_state[:, 0, :]  # ViTModel applies the final layernorm
            logits = self.m.classifier(cls)
            return logits, torch.softmax(logits, dim=-1), cls, torch.stack(tuple(out.attentions), dim=1)

    return ViTClassifierGraph(model).eval()


OUTPUTS = ["logits", "probabilities", "embedding", "attentions"]
DYNAMIC = {"pixel_values": {0: "batch"}, "logits": {0: "batch"}, "probabilities": {0: "batch"},
           "embedding": {0: "batch"}, "attentions": {0: "batch"}}


def export(model, pre: dict | None, out_dir: Path, model_id: str, *, weights: str, source: str, atol: float = 1e-4,
           seed: int = 0, card: dict | None = None, name: str | None = None, write_manifest: bool = True) -> dict:
    """Exports model to out_dir/model_id/model.onnx (atomically), checks parity, upserts the manifest entry."""
    import torch

    from .onnx_utils import atomic_dir, export as onnx_export
    from .parity import check, run_onnx

    from .vit import conv_stem_of

    out_dir = Path(out_dir)
    prep = preprocessing_of(model, pre)
    labels = labels_of(model)
    h, w = prep["size"]
    graph = wrap(model)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
    with torch.no_grad():
        ref = dict(zip(OUTPUTS, (t.numpy() for t in graph(torch.from_numpy(x)))))
    with atomic_dir(out_dir / model_id) as tmp:
        onnx_export(graph, (torch.from_numpy(x),), tmp / "model.onnx", ["pixel_values"], OUTPUTS, DYNAMIC)
        got = run_onnx(tmp / "model.onnx", {"pixel_values": x})
        diff = check(ref, got, atol, name=f"{model_id}/model.onnx")
        # dynamic batch: a batch of 3 must run and give the same first row
        x3 = np.concatenate([x, x[:1]], 0)
        got3 = run_onnx(tmp / "model.onnx", {"pixel_values": x3})
        if got3["logits"].shape[0] != 3:
            raise ExportError("exported graph does not take a dynamic batch")
        diff = max(diff, check({"logits": ref["logits"]}, {"logits": got3["logits"][:2]}, atol, name="batch-3"))
    final = out_dir / model_id
    cfg = model.config
    tokens = (h // cfg.patch_size) * (w // cfg.patch_size) + 1
    entry = {
        "id": model_id,
        "name": name or f"ViT classifier ({model_id})",
        "family": "classifier",
        "task": "image-classification",
        "weights": weights,
        "license": "Apache-2.0",
        "source": source,
        "variants": {"fp32": {"dtype": "fp32", "files": [mf.file_record(out_dir, final / "model.onnx", "model")],
                              "parity": mf.parity_record(diff, "PyTorch ViTForImageClassification (eager), fp32, "
                                                         f"seeded N(0,1) input [2,3,{h},{w}], all outputs")}},
        "preprocessing": prep,
        "labels": labels,
        "io": {"model": {"inputs": ["pixel_values"], "outputs": list(OUTPUTS)}},
        "config": {**({"conv_stem": conv_stem_of(cfg)} if conv_stem_of(cfg) else {}),
                   "hidden_size": int(cfg.hidden_size), "num_layers": int(cfg.num_hidden_layers),
                   "num_heads": int(cfg.num_attention_heads), "patch_size": int(cfg.patch_size),
                   "num_tokens": tokens, "cls_token_index": 0, "positive_label": labels[-1],
                   "attentions_shape": ["batch", int(cfg.num_hidden_layers), int(cfg.num_attention_heads), tokens,
                                        tokens]},
        "card": card or {"summary": "ViT image classifier.", "limitations": "Not for clinical use."},
    }
    if write_manifest:
        mf.upsert_entry(out_dir, entry)
    return entry
