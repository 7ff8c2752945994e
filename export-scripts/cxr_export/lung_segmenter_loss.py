"""Loss and metrics of the lung segmenter (lung_segmenter.py): weighted BCE + soft Dice per mask, mask IoU, Dice / IoU
against the ground truth with the ignore label excluded, and the summary statistics the evaluation reports."""

from __future__ import annotations

import numpy as np


def mask_losses(logits, target, weight):
    """logits [P,M,S,S], target [P,S,S] in [0,1], weight [P,S,S] (0 = ignore label) -> per-mask loss [P,M]:
    weighted BCE + soft Dice (ignore pixels count for neither)."""
    import torch.nn.functional as F

    t = target.unsqueeze(1).expand_as(logits)
    w = weight.unsqueeze(1).expand_as(logits)
    bce = (F.binary_cross_entropy_with_logits(logits, t, reduction="none") * w).sum((2, 3)) / w.sum((2, 3)).clamp(
        min=1)
    p = logits.sigmoid() * w
    inter = (p * t).sum((2, 3))
    dice = 1 - (2 * inter + 1) / (p.sum((2, 3)) + (t * w).sum((2, 3)) + 1)
    return bce + dice


def mask_iou(logits, target, weight):
    """Hard IoU of (logits > 0) vs (target > 0.5) over counted pixels: [P,M] (the IoU head's regression target)."""
    pred = (logits > 0).float()
    t = (target > 0.5).float().unsqueeze(1)
    w = (weight > 0.5).float().unsqueeze(1)
    inter = (pred * t * w).sum((2, 3))
    union = ((pred + t).clamp(max=1) * w).sum((2, 3))
    return inter / union.clamp(min=1)


def dice_iou(pred: np.ndarray, target: np.ndarray, ignore: np.ndarray) -> tuple[float, float]:
    """Binary Dice and IoU over the pixels not labelled ignore (127). Both empty: 1.0."""
    keep = ~ignore
    p = pred & keep
    t = target & keep
    inter = float(np.logical_and(p, t).sum())
    ps, ts = float(p.sum()), float(t.sum())
    union = ps + ts - inter
    if ps + ts == 0:
        return 1.0, 1.0
    return 2 * inter / (ps + ts), inter / union


def summarize(values) -> dict:
    v = np.asarray(values, float)
    return {"mean": round(float(v.mean()), 4), "median": round(float(np.median(v)), 4),
            "p10": round(float(np.percentile(v, 10)), 4), "min": round(float(v.min()), 4), "n": int(v.size)}
