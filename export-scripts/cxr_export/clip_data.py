"""cxr-clip's data: which images train, which are held out, their structured facts, and the locked image tower's
cached outputs.

Splits (reused, never re-drawn):
  Kermany train minus the classifier's validation split (data.stratified_split(labels, 0.1, seed 0), exactly as
  train_classifier carves it) -> training; that validation split -> model selection; Kermany test (624) -> the card.
  cxr-lung-masks: lung_segmenter.split_indices(source groups, seed 0, holdout 0.2) on the rows load_dataset keeps
  (both lung boxes present), as train-segmenter does -> the train part trains here, the 66 held-out images (lung-sam's
  card) are used only by the card's pediatric-vs-adult row.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .clip_captions import image_tags
from .errors import ExportError

from .data import SPLIT_SEED, VAL_FRAC  # noqa: F401 (pneumonia-vit's validation split; re-exported)
LUNG_HOLDOUT, LUNG_SEED = 0.2, 0  # lung-sam's --holdout / --seed


def kermany_subtypes(root: Path) -> dict[str, str]:
    """{relative path: 'bacteria' | 'virus' | ''} from labels.csv's pneumonia_subtype_from_filename column."""
    f = Path(root) / "labels.csv"
    if not f.is_file():
        raise ExportError(f"{root}: no labels.csv (the kermany-cxr-224 layout)")
    return {r["path"]: (r.get("pneumonia_subtype_from_filename") or "") for r in csv.DictReader(open(f))}


def kermany(root: Path, split: str, size: int = 224, limit_per_class: int | None = None) -> dict:
    """{'u8' [N,S,S,3], 'y' int [N] (1 = pneumonia), 'subtype' [N] str, 'tags' [N] frozenset, 'paths'}."""
    from .train_classifier import load_split

    root = Path(root)
    u8, y, paths = load_split(root, split, size, limit_per_class)
    sub = kermany_subtypes(root)
    rel = [str(Path(p).relative_to(root)) for p in paths]
    subtype = np.array([sub.get(r, "") for r in rel])
    tags = [image_tags(finding="PNEUMONIA" if yi else "NORMAL", subtype=s or None, population="pediatric")
            for yi, s in zip(y, subtype)]
    return {"u8": u8, "y": y, "subtype": subtype, "tags": tags, "paths": rel}


def kermany_train_val(root: Path, size: int = 224, limit_per_class: int | None = None) -> tuple[dict, dict]:
    """(train part, validation part) of Kermany train, split exactly as train-classifier splits it."""
    from . import data as D

    d = kermany(root, "train", size, limit_per_class)
    tr, va = D.stratified_split(d["y"], VAL_FRAC, SPLIT_SEED)
    return _take(d, tr), _take(d, va)


def _take(d: dict, idx) -> dict:
    idx = np.asarray(idx)
    return {k: (v[idx] if isinstance(v, np.ndarray) else [v[i] for i in idx]) for k, v in d.items()}


def lung_mask_split(data_dir: Path) -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows) of cxr-lung-masks/index.csv, as lung-sam's training splits them."""
    from .lung_segmenter import LUNGS, source_group, split_indices

    data_dir = Path(data_dir)
    idx = data_dir / "index.csv"
    if not idx.is_file():
        raise ExportError(f"{data_dir}: no index.csv (the cxr-lung-masks layout)")
    rows = list(csv.DictReader(open(idx)))
    boxes = json.loads((data_dir / "boxes.json").read_text())
    rows = [r for r in rows if all(k in boxes.get(Path(r["image"]).stem, {}) for k in LUNGS)]  # as load_dataset
    tr, ev = split_indices([source_group(r) for r in rows], LUNG_SEED, LUNG_HOLDOUT)
    return [rows[i] for i in tr], [rows[i] for i in ev]


def adult(data_dir: Path, rows: list[dict], size: int = 224) -> dict:
    """{'u8' [N,S,S,3] (squashed to S x S as the Kermany images are), 'tags', 'paths'} of lung-mask rows."""
    from . import data as D

    paths = [str(Path(data_dir) / r["image"]) for r in rows]
    u8 = D.load_images(paths, size)
    tags = []
    for r in rows:
        age = float(r["age"]) if (r.get("age") or "").strip() else None
        tags.append(image_tags(finding=r["finding"], population="adult", view=r.get("view"), sex=r.get("sex"),
                               age=age))
    return {"u8": u8, "tags": tags, "paths": [r["image"] for r in rows], "y": np.array(
        [0 if "normal" in t else 1 for t in tags])}


def locked_features(model, u8: np.ndarray, views: int, seed: int, batch: int = 64, log=print):
    """The locked part of the image tower over `views` views of every image: float16 [N, views, T, H]. View 0 is
    the plain image; views >= 1 are train_classifier.augment draws (seeded by (seed, view)). Runs once per run
    (LiT: the locked tower's outputs do not change during training)."""
    import torch

    from .train_classifier import augment, to_tensor

    n = len(u8)
    out = None
    with torch.no_grad():
        for v in range(views):
            gen = torch.Generator().manual_seed(seed * 1000 + v)
            for s in range(0, n, batch):
                x = to_tensor(u8[s:s + batch])
                if v:
                    x = augment(x, gen)
                h = model.vision.forward_locked(x).to(torch.float16).numpy()
                if out is None:
                    out = np.empty((n, views) + h.shape[1:], np.float16)
                out[s:s + len(h), v] = h
            log(f"  locked features: view {v + 1}/{views} of {n} images")
    return out
