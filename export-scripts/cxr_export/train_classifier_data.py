"""Data for `cxr-export train-classifier` (train_classifier.py): the ViT image processor (resize, rescale,
ImageNet-style normalisation with the app's mean / std), a Kermany split loaded as uint8 images with labels in LABELS
order, the conversion to normalised tensors and the seeded training augmentation."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import ExportError
from .vit import LABELS, MEAN, STD


def image_processor(size: int):
    from transformers import ViTImageProcessor

    return ViTImageProcessor(do_resize=True, size={"height": size, "width": size}, resample=2, do_rescale=True,
                             rescale_factor=1 / 255, do_normalize=True, image_mean=list(MEAN), image_std=list(STD))


def load_split(root: Path, split: str, size: int, limit_per_class: int | None = None):
    """(uint8 images [N,S,S,3], labels int64 [N], paths) of root/<split>/<label>/ with labels in LABELS order."""
    from . import data as D

    items = D.kermany_split(root, split)
    unknown = sorted({lab for _, lab in items} - set(LABELS))
    if unknown:
        raise ExportError(f"{root}/{split}: unexpected class folders {unknown}; expected {LABELS}")
    if limit_per_class:
        kept, seen = [], {}
        for p, lab in items:
            if seen.get(lab, 0) < limit_per_class:
                kept.append((p, lab))
                seen[lab] = seen.get(lab, 0) + 1
        items = kept
    paths = [p for p, _ in items]
    y = np.array([LABELS.index(lab) for _, lab in items], dtype=np.int64)
    return D.load_images(paths, size), y, paths


def to_tensor(u8: np.ndarray):
    """uint8 [B,H,W,3] -> normalized float [B,3,H,W] with MEAN/STD."""
    import torch

    x = torch.from_numpy(u8).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(x, gen):
    """Batched light augmentation on normalized [B,3,H,W]: random zoom/crop (scale 0.8-1.1 of the view, aspect
    +-10%), rotation +-10 deg, shift +-8%, brightness/contrast +-10%. One affine grid_sample per batch."""
    import torch
    import torch.nn.functional as F

    b = x.shape[0]

    def u(lo, hi):
        return torch.rand(b, generator=gen) * (hi - lo) + lo

    scale = u(0.8, 1.1)
    aspect = torch.exp(u(-0.1, 0.1))
    ang = u(-10, 10) * math.pi / 180
    tx, ty = u(-0.08, 0.08), u(-0.08, 0.08)
    sx, sy = scale * aspect.sqrt(), scale / aspect.sqrt()
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta = torch.stack([torch.stack([cos * sx, -sin * sy, tx], 1), torch.stack([sin * sx, cos * sy, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    c = u(0.9, 1.1).view(b, 1, 1, 1)
    br = u(-0.1, 0.1).view(b, 1, 1, 1)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * c + m + br
