"""The project's ViT classifier: its architecture (transformers ViTConfig from DEFAULT_ARCH), its preprocessing
constants and labels, and the binary metrics it is judged by (ROC AUC, ECE, threshold metrics, Youden's J).
Shared by train_classifier.py (training) and classifier.py (export, evaluation); train_classifier re-exports them."""

from __future__ import annotations

import numpy as np

DEFAULT_ARCH = dict(image_size=224, patch_size=32, hidden_size=192, num_hidden_layers=6, num_attention_heads=3,
                    intermediate_size=768)
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
LABELS = ["NORMAL", "PNEUMONIA"]


# ---------------------------------------------------------------------------------------------------------------
# Metrics (no sklearn here)
# ---------------------------------------------------------------------------------------------------------------


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC with ties counted half."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    s = score[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    return float((r[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def ece(y: np.ndarray, p_pos: np.ndarray, bins: int = 15) -> float:
    """Expected calibration error of the predicted class's confidence (top-label), equal-width bins over [0,1]."""
    y = np.asarray(y).astype(int)
    p_pos = np.asarray(p_pos, dtype=np.float64)
    pred = (p_pos >= 0.5).astype(int)
    conf = np.where(pred == 1, p_pos, 1.0 - p_pos)
    correct = (pred == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    total = 0.0
    for k in range(bins):
        lo, hi = edges[k], edges[k + 1]
        m = (conf > lo) & (conf <= hi) if k > 0 else (conf >= lo) & (conf <= hi)
        if m.any():
            total += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def binary_metrics(y: np.ndarray, p_pos: np.ndarray, threshold: float = 0.5) -> dict:
    """Positive class = 1 (pneumonia); predicted positive when p_pos >= threshold."""
    y = np.asarray(y).astype(int)
    pred = (np.asarray(p_pos) >= threshold).astype(int)
    tp = int(((pred == 1) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    spec = tn / (tn + fp) if tn + fp else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"accuracy": (tp + tn) / len(y), "precision": prec, "recall": rec, "specificity": spec, "f1": f1,
            "auc": roc_auc(y, p_pos), "ece_15": ece(y, p_pos, 15), "tp": tp, "tn": tn, "fp": fp, "fn": fn,
            "threshold": float(threshold), "n": int(len(y))}


def youden_threshold(y: np.ndarray, p_pos: np.ndarray) -> float:
    """Threshold maximizing sensitivity + specificity - 1 (ties: the one closest to 0.5); midpoint between scores."""
    y = np.asarray(y).astype(int)
    p = np.asarray(p_pos, dtype=np.float64)
    cand = np.unique(p)
    mids = np.concatenate([[0.0], (cand[:-1] + cand[1:]) / 2.0, [1.0]]) if len(cand) > 1 else np.array([0.5])
    best, best_t = -2.0, 0.5
    n_pos, n_neg = max(1, (y == 1).sum()), max(1, (y == 0).sum())
    for t in mids:
        pred = p >= t
        j = (pred & (y == 1)).sum() / n_pos + (~pred & (y == 0)).sum() / n_neg - 1.0
        if j > best + 1e-12 or (abs(j - best) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best, best_t = j, float(t)
    return best_t


# ---------------------------------------------------------------------------------------------------------------
# Architecture
# ---------------------------------------------------------------------------------------------------------------


def vit_config(labels=LABELS, **arch):
    from transformers import ViTConfig

    a = {**DEFAULT_ARCH, **{k: v for k, v in arch.items() if v is not None}}
    return ViTConfig(num_channels=3, hidden_act="gelu", layer_norm_eps=1e-12, qkv_bias=True,
                     hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                     id2label={i: lab for i, lab in enumerate(labels)},
                     label2id={lab: i for i, lab in enumerate(labels)}, **a)


# ---------------------------------------------------------------------------------------------------------------
# Hybrid ViT: a ResNet stem instead of the patch projection (Dosovitskiy et al., ICLR 2021, section 3.1 "Hybrid
# Architecture"; Xiao et al., NeurIPS 2021, "Early convolutions help transformers see better")
# ---------------------------------------------------------------------------------------------------------------


def conv_stem_of(config) -> dict | None:
    """The hybrid stem recorded in a ViTConfig (config.conv_stem = {"type": "resnet", "widths": [...],
    "depths": [...]}), or None for the plain patch-projection ViT."""
    stem = getattr(config, "conv_stem", None)
    return dict(stem) if stem else None


def resnet_config(widths: list[int], depths: list[int], labels=LABELS):
    """A from-scratch ResNet (transformers ResNetConfig, basic blocks; ResNet-18 is widths 64,128,256,512 and depths
    2,2,2,2): the CNN teacher and the CNN reference row of the model card (He et al., CVPR 2016)."""
    from transformers import ResNetConfig

    return ResNetConfig(num_channels=3, embedding_size=widths[0], hidden_sizes=list(widths), depths=list(depths),
                        layer_type="basic", hidden_act="relu", downsample_in_first_stage=False,
                        id2label={i: lab for i, lab in enumerate(labels)},
                        label2id={lab: i for i, lab in enumerate(labels)})


def _resnet_stem(config):
    """nn.Module: pixel_values [B,3,S,S] -> token grid [B,hidden,S/32,S/32]. A from-scratch ResNet (basic blocks,
    resnet_config; stride 32 with 4 stages) without its pooler, then a 1x1 convolution to the
    transformer width: the ViT paper's hybrid, whose 'patches' are the CNN feature map's 1x1 cells. The token grid
    at 224 px is the patch-32 ViT's 7x7, so num_tokens (50), attention rollout and the OOD attention features keep
    their shapes."""
    import torch
    from transformers import ResNetModel

    stem = conv_stem_of(config)
    if stem.get("type") != "resnet":
        raise ValueError(f"unknown conv_stem type {stem.get('type')!r}")

    class Stem(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.resnet = ResNetModel(resnet_config(stem["widths"], stem["depths"]))
            self.resnet.pooler = torch.nn.Identity()
            self.proj = torch.nn.Conv2d(stem["widths"][-1], config.hidden_size, kernel_size=1)

        @property
        def weight(self):  # ViTModel reads projection.weight.dtype to cast its input
            return self.proj.weight

        def forward(self, x):
            f = self.resnet.encoder(self.resnet.embedder(x), return_dict=False)[0]
            return self.proj(f)

    return Stem()


_HYBRID = {}


def _hybrid_class():
    """ViTForImageClassification whose __init__ swaps in the ResNet stem when config.conv_stem is set, so that
    transformers' save_pretrained / from_pretrained (and their checkpoint key conversions) handle the stem too."""
    if "cls" not in _HYBRID:
        from transformers import ViTForImageClassification

        class HybridViTForImageClassification(ViTForImageClassification):
            def __init__(self, config):
                super().__init__(config)
                if conv_stem_of(config):
                    self.vit.embeddings.patch_embeddings.projection = _resnet_stem(config)
                    self.post_init()

        _HYBRID["cls"] = HybridViTForImageClassification
    return _HYBRID["cls"]


def vit_model(config):
    """ViTForImageClassification for config; with config.conv_stem its patch projection is the ResNet stem
    (_resnet_stem). Parameters of the stem are named vit.embeddings.patch_embeddings.projection.{resnet,proj}.*"""
    return _hybrid_class()(config)


def load_vit(path, eager: bool = True):
    """A save_pretrained ViT classifier folder -> model (eval mode), hybrid or plain. Raises ValueError when a
    weight is missing or left over (transformers' from_pretrained alone would only warn and re-initialise it)."""
    kw = {"attn_implementation": "eager"} if eager else {}
    model, info = _hybrid_class().from_pretrained(path, output_loading_info=True, **kw)
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise ValueError(f"{path}: checkpoint does not match its config: {str(bad)[:400]}")
    return model.eval()


def fuse_batchnorm(model):
    """Fold every eval-mode BatchNorm2d of a hybrid stem into the convolution before it (conv with bias, the norm
    replaced by Identity), in place; returns model. Why: torch.onnx folds Conv+BatchNorm in eval mode and the folded
    weights lose their parameter names, so the exported graph is made from an already-fused module whose
    convolutions keep their names (recover.py reads them back). Numerically the same function (Ioffe & Szegedy 2015:
    y = gamma (x - mean) / sqrt(var + eps) + beta)."""
    import torch
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for m in list(model.modules()):
        conv, bn = getattr(m, "convolution", None), getattr(m, "normalization", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            m.convolution = fuse_conv_bn_eval(conv.eval(), bn.eval())
            m.normalization = torch.nn.Identity()
    return model


def fused_structure(model):
    """The module layout of fuse_batchnorm without its values: every stem conv gets a bias and its BatchNorm2d
    becomes Identity (recover.py fills the weights from the graph)."""
    import torch

    for m in list(model.modules()):
        conv, bn = getattr(m, "convolution", None), getattr(m, "normalization", None)
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            c = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                                bias=True)
            m.convolution = c
            m.normalization = torch.nn.Identity()
    return model
