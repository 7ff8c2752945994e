"""Models for `cxr-export train-classifier` (train_classifier.py): the ViT or ResNet to train and its initialisation
(from scratch, a checkpoint folder or an exported ViT .onnx), the distillation teacher and loss (Hinton et al. 2015),
temperature scaling fitted on validation and baked into the last layer (Guo et al. 2017), and batched prediction."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from .errors import ExportError
from .vit import LABELS, conv_stem_of, resnet_config, vit_config, vit_model  # noqa: F401 (resnet_config re-exported)
from .train_classifier_data import to_tensor


def build_model(args: argparse.Namespace):
    """(model, arch dict) for --model vit|resnet with the CLI's architecture flags."""
    from transformers import ResNetForImageClassification, ViTForImageClassification

    if args.model == "resnet":
        widths = [int(v) for v in args.resnet_widths.split(",")]
        depths = [int(v) for v in args.resnet_depths.split(",")]
        if len(widths) != len(depths):
            raise ExportError("--resnet-widths and --resnet-depths need the same number of stages")
        arch = dict(model="resnet", image_size=args.image_size, widths=widths, depths=depths)
        return ResNetForImageClassification(resnet_config(widths, depths)), arch
    arch = dict(image_size=args.image_size, patch_size=args.patch_size, hidden_size=args.hidden,
                num_hidden_layers=args.layers, num_attention_heads=args.heads, intermediate_size=args.mlp)
    if args.image_size % args.patch_size or args.hidden % args.heads:
        raise ExportError("--image-size must be a multiple of --patch-size and --hidden of --heads")
    if getattr(args, "conv_stem", "none") == "resnet":
        # The hybrid's token grid is the ResNet's stride-32 feature map: it stands in for patch 32.
        widths = [int(v) for v in args.resnet_widths.split(",")]
        depths = [int(v) for v in args.resnet_depths.split(",")]
        if len(widths) != 4 or len(depths) != 4 or args.patch_size != 32:
            raise ExportError("--conv-stem resnet needs 4 ResNet stages (stride 32) and --patch-size 32")
        arch["conv_stem"] = {"type": "resnet", "widths": widths, "depths": depths}
        return vit_model(vit_config(**arch)), arch
    return ViTForImageClassification(vit_config(**arch)), arch


STEM = "vit.embeddings.patch_embeddings.projection."


def init_stem_from_cnn(model, path: Path) -> str:
    """Copy a train-classifier ResNet checkpoint's backbone (embedder + 4 stages; its classifier is dropped) into
    the hybrid ViT's stem (vit.py _resnet_stem), strictly. The 1x1 projection to the transformer width stays as
    initialised. Returns a description for summary.json."""
    from transformers import ResNetForImageClassification

    cnn = ResNetForImageClassification.from_pretrained(path)
    stem = model.vit.embeddings.patch_embeddings.projection
    src = {k: v for k, v in cnn.resnet.state_dict().items()}
    missing, unexpected = stem.resnet.load_state_dict(src, strict=False)
    if missing or unexpected:
        raise ExportError(f"--stem-init {path}: ResNet stages differ (missing {list(missing)[:3]}, unexpected "
                          f"{list(unexpected)[:3]}); use the same --resnet-widths/--resnet-depths")
    return f"{path} (ResNet backbone, {sum(v.numel() for v in src.values()) / 1e6:.2f}M values)"


def init_weights(model, path: Path) -> str:
    """Load the starting weights of --init-from into model (same architecture): a save_pretrained checkpoint folder,
    or an exported ViT classifier .onnx whose PyTorch module is rebuilt from the graph and checked against ONNX
    Runtime first (cxr_export.recover). Returns a description for summary.json."""
    from transformers import AutoModelForImageClassification

    path = Path(path)
    if path.suffix == ".onnx":
        from .recover import checked_vit_from_onnx

        cfg = model.config
        arch = dict(image_size=cfg.image_size, patch_size=cfg.patch_size, hidden_size=cfg.hidden_size,
                    num_hidden_layers=cfg.num_hidden_layers, num_attention_heads=cfg.num_attention_heads,
                    intermediate_size=cfg.intermediate_size)
        if conv_stem_of(cfg):  # the graph may be a plain ViT (its transformer initialises the hybrid's)
            arch = {**arch, "conv_stem": conv_stem_of(cfg) if "projection.resnet" in _graph_names(path) else None}
        src, diff = checked_vit_from_onnx(path, arch, LABELS)
        how = f"{path} (rebuilt from the graph, max |ONNX Runtime - PyTorch| {diff:.1e})"
    elif (path / "config.json").is_file():
        from .vit import load_vit

        src = load_vit(path, eager=False)
        how = str(path)
    else:
        raise ExportError(f"--init-from {path}: neither an .onnx file nor a checkpoint folder with config.json")
    state = src.state_dict()
    if conv_stem_of(model.config) and not conv_stem_of(src.config):
        # A plain ViT (v2) as the hybrid's transformer: everything but the patch projection, which the stem replaces
        # (initialised by --stem-init or from scratch).
        state = {k: v for k, v in state.items() if not k.startswith(STEM)}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if conv_stem_of(model.config) and not conv_stem_of(src.config):
        missing = [k for k in missing if not k.startswith(STEM)]
    if missing or unexpected:
        raise ExportError(f"--init-from {path}: architecture differs (missing {list(missing)[:3]}, unexpected "
                          f"{list(unexpected)[:3]})")
    return how


def _graph_names(path: Path) -> str:
    """All initializer names of an ONNX graph, joined (to tell a hybrid graph, whose stem is named
    ...projection.resnet..., from a plain one)."""
    import onnx

    return " ".join(i.name for i in onnx.load(str(path), load_external_data=False).graph.initializer)


def load_teacher(path: Path):
    """(teacher, input size in px): a train-classifier checkpoint folder (save_pretrained: any transformers image
    classifier with our LABELS, its size from preprocessor_config.json) in eval mode with frozen weights."""
    from transformers import AutoModelForImageClassification

    path = Path(path)
    if not (path / "config.json").is_file():
        raise ExportError(f"--teacher {path}: no config.json (expected a train-classifier run's checkpoint/ folder)")
    teacher = AutoModelForImageClassification.from_pretrained(path).eval()
    got = [teacher.config.id2label[i] for i in range(teacher.config.num_labels)]
    if got != list(LABELS):
        raise ExportError(f"--teacher {path}: labels {got}, expected {LABELS}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    pre = path / "preprocessor_config.json"
    size = int(json.loads(pre.read_text())["size"]["height"]) if pre.is_file() else None
    return teacher, size


def distillation_loss(student_logits, teacher_logits, labels, ce, alpha: float, tau: float, kind: str):
    """(1 - alpha) * CE(student, labels) + alpha * distillation term.

    soft: tau^2 * KL(softmax(t / tau) || softmax(s / tau)) (Hinton et al. 2015, "Distilling the knowledge in a neural
    network"); hard: CE(student, argmax teacher), which DeiT found better with a convnet teacher (Touvron et al.,
    ICML 2021, section 5.1). Logits [B, C], labels [B] int64."""
    import torch.nn.functional as F

    base = ce(student_logits, labels)
    if kind == "hard":
        kd = F.cross_entropy(student_logits, teacher_logits.argmax(-1))
    else:
        kd = F.kl_div(F.log_softmax(student_logits / tau, -1), F.log_softmax(teacher_logits / tau, -1),
                      reduction="batchmean", log_target=True) * tau * tau
    return (1 - alpha) * base + alpha * kd


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature T > 0 minimising the NLL of softmax(logits / T) on held-out logits [N, C] (Guo et al., ICML 2017,
    "On calibration of modern neural networks"). A 1-D search over log T (golden section on [-3, 3]) is exact
    enough and has no optimiser state."""
    import torch
    import torch.nn.functional as F

    lt, yt = torch.from_numpy(logits).double(), torch.from_numpy(y)

    def nll(log_t: float) -> float:
        return float(F.cross_entropy(lt / math.exp(log_t), yt))

    lo, hi, g = -3.0, 3.0, (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    for _ in range(80):
        if nll(a) < nll(b):
            hi, b = b, a
            a = hi - g * (hi - lo)
        else:
            lo, a = a, b
            b = lo + g * (hi - lo)
    return math.exp((lo + hi) / 2)


def bake_temperature(model, t: float) -> None:
    """Divide the final classification layer's weight and bias by T, so that the exported graph's logits are the
    calibrated logits / T and nothing downstream (ONNX, app, OOD, heatmaps) changes shape or code."""
    import torch

    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == len(LABELS)][-1]
    with torch.no_grad():
        last.weight.div_(t)
        if last.bias is not None:
            last.bias.div_(t)


def predict(model, u8: np.ndarray, batch: int = 128):
    """(softmax probabilities [N,C], logits [N,C]) of uint8 images [N,S,S,3], eval mode, no grad."""
    import torch

    model.eval()
    dev = next(model.parameters()).device
    out = []
    with torch.no_grad():
        for i in range(0, len(u8), batch):
            out.append(model(pixel_values=to_tensor(u8[i:i + batch]).to(dev)).logits.float().cpu())
    logits = torch.cat(out)
    return logits.softmax(-1).numpy(), logits.numpy()
