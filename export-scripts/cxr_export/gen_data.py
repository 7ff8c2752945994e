"""Plumbing of `cxr-export train-generator`: threads and niceness, seeds, JSON logs, the Kermany train images
(decoded once, cached in RUN/cache) and the stop rule of a stage (step count or wall-time budget)."""

from __future__ import annotations

import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError

def _setup(args) -> None:
    import torch

    if getattr(args, "nice", 0):
        try:
            os.nice(int(args.nice))
        except OSError:
            pass
    torch.set_num_threads(max(1, int(getattr(args, "threads", 1) or 1)))


def _seed(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _append_log(path: Path, rows: list[dict]) -> None:
    if rows:
        with open(path, "a") as fh:
            for r in rows:
                fh.write(json.dumps(r) + "\n")


def _write_json(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def list_split(root: Path, split: str, labels: tuple[str, ...] = ("NORMAL", "PNEUMONIA")) -> list[tuple[Path, str]]:
    """[(path, label)] of root/<split>/<label>/* (sorted), only the given labels."""
    from .data import IMAGE_EXTS

    out = []
    for label in labels:
        d = Path(root) / split / label
        if not d.is_dir():
            raise ExportError(f"--data {root}: no folder {split}/{label}")
        out += [(p, label) for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_EXTS]
    if not out:
        raise ExportError(f"--data {root}: no images in {split}/{labels}")
    return out


def load_gray(paths: list[Path], size: int) -> np.ndarray:
    """uint8 [N,size,size]: PIL decode -> 8-bit gray ('L') -> bilinear resize (PIL antialiases when shrinking).
    Same pixels as lora.load_images (RGB of a gray JPEG has three equal channels) for square inputs."""
    from PIL import Image

    out = np.empty((len(paths), size, size), np.uint8)
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            im = im.convert("RGB").resize((size, size), Image.BILINEAR)
            out[i] = np.asarray(im, np.uint8)[..., 0]
    return out


def to_pixels(gray_u8: np.ndarray):
    """uint8 [N,H,W] -> float32 torch [N,3,H,W] in [-1, 1] (the SD VAE's input range, gray in all channels)."""
    import torch

    x = torch.from_numpy(gray_u8.astype(np.float32) / 127.5 - 1.0)
    return x[:, None].expand(-1, 3, -1, -1).contiguous()


def train_images(args, labels: tuple[str, ...], size: int) -> tuple[np.ndarray, list[str]]:
    """Train-split images of the given labels at `size` px, cached in RUN/cache (uint8)."""
    rows = list_split(args.data, "train", labels)
    if args.max_images:
        rng = np.random.default_rng(args.seed)
        rows = [rows[i] for i in sorted(rng.permutation(len(rows))[: args.max_images])]
    key = f"train-{'-'.join(labels)}-{size}-{len(rows)}-{args.seed}"
    cache = Path(args.run_dir) / "cache" / f"{key}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["x"], [str(s) for s in z["labels"]]
    x = load_gray([p for p, _ in rows], size)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, x=x, labels=np.array([lab for _, lab in rows]))
    return x, [lab for _, lab in rows]


class Budget:
    def __init__(self, minutes: float | None, max_steps: int, start_step: int):
        self.t0 = time.time()
        self.limit = minutes * 60 if minutes else math.inf
        self.max_steps = max_steps
        self.step = start_step

    def more(self) -> bool:
        return self.step < self.max_steps and time.time() - self.t0 < self.limit

    def elapsed(self) -> float:
        return time.time() - self.t0
