"""Data for the lung segmenter (lung_segmenter.py): the cxr-lung-masks dataset loaded as 256-frame images with one
target per lung (radiologist boxes decide which lung a pixel belongs to, label 127 ignored), SAM's preprocessing
(longest side resize, ImageNet normalisation, bottom-right padding) and the seeded by-source train / evaluation
split."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from .errors import ExportError


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
LUNGS = ("right_lung", "left_lung")
IGNORE = 127


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def default_data_dir() -> Path:
    from .data import shared_dir

    return shared_dir() / "data" / "cxr-lung-masks"


def preprocess_shape(h: int, w: int, size: int) -> tuple[int, int]:
    """segment_anything ResizeLongestSide.get_preprocess_shape: the resized (h, w) with longest side `size`."""
    scale = size / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


def to_frame(gray: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """uint8 [H,W] -> uint8 [size,size]: longest side resized to `size` (PIL bilinear, antialiased), zero padding
    bottom-right. Returns (frame, (new_h, new_w))."""
    from PIL import Image

    h, w = gray.shape
    nh, nw = preprocess_shape(h, w, size)
    small = np.asarray(Image.fromarray(gray).resize((nw, nh), Image.BILINEAR))
    frame = np.zeros((size, size), np.uint8)
    frame[:nh, :nw] = small
    return frame, (nh, nw)


def normalize(frames_u8, valid_hw=None):
    """uint8 grey [B,S,S] (numpy or torch) -> float32 torch [B,3,S,S]: grey/255 replicated to RGB, ImageNet
    mean/std, padding (outside valid_hw, a list of (h, w)) set to 0 after normalisation as SAM's processor does."""
    import torch

    x = torch.as_tensor(np.asarray(frames_u8)).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    x = (x.unsqueeze(1).expand(-1, 3, -1, -1) - mean) / std
    if valid_hw is not None:
        keep = torch.zeros(x.shape[0], 1, x.shape[2], x.shape[3])
        for i, (h, w) in enumerate(valid_hw):
            keep[i, :, :h, :w] = 1
        x = x * keep
    return x.contiguous()


def split_lungs(mask: np.ndarray, boxes: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """mask uint8 [H,W] (255 lung, 127 ignore, 0 background), boxes {right_lung, left_lung: [x0,y0,x1,y1]} ->
    (right bool [H,W], left bool [H,W], ignore bool [H,W]). A lung pixel goes to the lung whose box holds it; in
    both boxes or in neither, to the box whose centre is nearer in x (the lungs lie side by side)."""
    h, w = mask.shape
    lung = mask > 191
    ignore = (mask > 63) & ~lung
    yy, xx = np.mgrid[0:h, 0:w]
    inside = []
    cx = []
    for k in LUNGS:
        x0, y0, x1, y1 = boxes[k]
        inside.append((xx + 0.5 >= x0) & (xx + 0.5 <= x1) & (yy + 0.5 >= y0) & (yy + 0.5 <= y1))
        cx.append((x0 + x1) / 2)
    nearer_right = np.abs(xx + 0.5 - cx[0]) <= np.abs(xx + 0.5 - cx[1])
    right = lung & ((inside[0] & ~inside[1]) | ((inside[0] == inside[1]) & nearer_right))
    left = lung & ~right
    return right, left, ignore


def _resize_float(a: np.ndarray, nh: int, nw: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((nw, nh), Image.BILINEAR))


def source_group(row: dict) -> str:
    """Images of one paper / case share a group (its DOI or page); the figshare collection is one image per
    patient, so there the image itself is the group."""
    key = row.get("doi") or row.get("source_url") or ""
    if not key or "figshare" in key:
        return Path(row["image"]).stem
    return key


def load_dataset(data_dir: Path, size: int = 256, limit: int | None = None, cache: Path | None = None) -> dict:
    """Reads the cxr-lung-masks layout into frames of `size`. Returns dict: names [N], groups [N], frames uint8
    [N,S,S], hw int [N,2] (resized content h, w), orig int [N,2] (H, W), targets uint8 [N,2,S,S] (soft per-lung
    targets x255, order right, left), weights uint8 [N,S,S] (255 = counted, 0 = ignore label), boxes float32
    [N,2,4] (x0,y0,x1,y1 in frame pixels)."""
    from PIL import Image

    data_dir = Path(data_dir)
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=False)
        d = {k: z[k] for k in z.files}
        if limit is None or len(d["names"]) <= limit:
            return d
    idx = data_dir / "index.csv"
    if not idx.exists():
        raise ExportError(f"{data_dir}: no index.csv (expected the cxr-lung-masks layout: images/, masks/, "
                          "boxes.json, index.csv)")
    rows = list(csv.DictReader(open(idx)))
    boxes = json.loads((data_dir / "boxes.json").read_text())
    # both lungs need a radiologist box (one image of the set has only left_lung): others are left out
    rows = [r for r in rows if all(k in boxes.get(Path(r["image"]).stem, {}) for k in LUNGS)]
    if limit:
        rows = rows[:limit]
    out = {k: [] for k in ("names", "groups", "frames", "hw", "orig", "targets", "weights", "boxes")}
    for r in rows:
        name = Path(r["image"]).stem
        gray = np.asarray(Image.open(data_dir / r["image"]).convert("L"))
        mask = np.asarray(Image.open(data_dir / r["mask"]).convert("L"))
        if mask.shape != gray.shape:
            raise ExportError(f"{r['mask']}: mask {mask.shape} and image {gray.shape} differ in size")
        h, w = gray.shape
        frame, (nh, nw) = to_frame(gray, size)
        right, left, ignore = split_lungs(mask, boxes[name])
        t = np.zeros((2, size, size), np.uint8)
        wgt = np.zeros((size, size), np.uint8)
        for i, m in enumerate((right, left)):
            t[i, :nh, :nw] = np.clip(_resize_float(m * 255.0, nh, nw) + 0.5, 0, 255).astype(np.uint8)
        wgt[...] = 255
        wgt[:nh, :nw] = np.clip(255.0 - _resize_float(ignore * 255.0, nh, nw) + 0.5, 0, 255).astype(np.uint8)
        scale_x, scale_y = nw / w, nh / h
        b = np.array([[boxes[name][k][0] * scale_x, boxes[name][k][1] * scale_y,
                       boxes[name][k][2] * scale_x, boxes[name][k][3] * scale_y] for k in LUNGS], np.float32)
        out["names"].append(name)
        out["groups"].append(source_group(r))
        out["frames"].append(frame)
        out["hw"].append((nh, nw))
        out["orig"].append((h, w))
        out["targets"].append(t)
        out["weights"].append(wgt)
        out["boxes"].append(b)
    d = {k: np.array(v) for k, v in out.items()}
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, **d)
    return d


def split_indices(groups, seed: int, holdout: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split by source group: groups are shuffled and taken for evaluation until >= holdout of the images
    are held out. Returns (train_idx, eval_idx), each sorted."""
    groups = list(groups)
    uniq = sorted(set(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(uniq))
    need = math.ceil(holdout * len(groups))
    held: set[str] = set()
    n = 0
    for i in order:
        if n >= need:
            break
        g = uniq[i]
        held.add(g)
        n += groups.count(g)
    ev = np.array([i for i, g in enumerate(groups) if g in held], int)
    tr = np.array([i for i, g in enumerate(groups) if g not in held], int)
    return tr, ev
