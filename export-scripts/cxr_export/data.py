"""`cxr-export data`: labelled chest X-rays -> seeded stratified splits + a class-balanced image subset laid out for
diffusers' train_text_to_image_lora (PNG files + metadata.jsonl {"file_name", "text"}) + labels.csv.

Sources (one of):
  --folder DIR   images labelled by sub-folder name (DIR/NORMAL/*.jpeg, DIR/PNEUMONIA/*.jpeg); when DIR holds
                 train/ and test/ split folders (e.g. ../shared/data/kermany-cxr-224) the test split is kept as is
                 and val is carved out of train;
  --csv FILE     rows path,label (paths relative to the CSV's folder unless absolute);
  --npz FILE     MedMNIST-style npz (train_images/train_labels[, val_*][, test_*]; labels 0 normal, 1 pneumonia).

Outputs in --out (written to a temporary sibling, moved into place when complete):
  splits.csv      source,label,split for every image (split: train | val | test)
  images/         the subset, N per class drawn from train (seeded): <label>_<k>.png, metadata.jsonl, labels.csv
  summary.json    counts per split and class
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import ExportError

IMAGE_EXTS = {".jpeg", ".jpg", ".png", ".bmp", ".tif", ".tiff"}
NPZ_KEYS = ("train_images", "train_labels")
NPZ_LABELS = {0: "NORMAL", 1: "PNEUMONIA"}


def shared_dir() -> Path:
    """../shared beside the repository root (or $CXR_SHARED)."""
    import os

    env = os.environ.get("CXR_SHARED")
    if env:
        return Path(env)
    return (Path(__file__).resolve().parents[2] / ".." / "shared").resolve()


def caption(label: str) -> str:
    """The text prompt of a class, for text-to-image fine-tuning."""
    low = label.strip().lower()
    if low in {"normal", "no finding", "healthy"}:
        return "a normal chest X-ray"
    return f"a chest X-ray showing {low}"


# ---------------------------------------------------------------------------------------------------------------
# Listing sources
# ---------------------------------------------------------------------------------------------------------------


def _class_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_image_folder(root) -> list[tuple[str, str]]:
    """[(path, label)] for images under root/<label>/, sorted by label then file name."""
    root = Path(root)
    if not root.is_dir():
        raise ExportError(f"image folder not found: {root}")
    items: list[tuple[str, str]] = []
    for d in _class_dirs(root):
        for f in sorted(d.iterdir()):
            if f.is_file() and f.suffix.lower() in IMAGE_EXTS:
                items.append((str(f), d.name))
    if not items:
        raise ExportError(f"no labelled images in {root}: expected {root}/<label>/*.jpeg|png")
    return items


def read_csv_list(path) -> list[tuple[str, str]]:
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"CSV not found: {path}")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or "path" not in rows[0] or "label" not in rows[0]:
        raise ExportError(f"{path}: expected a header with columns path,label")
    out = []
    for r in rows:
        p = Path(r["path"])
        p = p if p.is_absolute() else path.parent / p
        if not p.is_file():
            raise ExportError(f"{path}: image not found: {p}")
        out.append((str(p), r["label"]))
    return out


def load_npz(path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{split: (images uint8 [N,H,W] or [N,H,W,C], labels int64 [N])} from a MedMNIST-style npz."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"npz not found: {path}")
    try:
        z = np.load(path)
        keys = set(z.files)
    except Exception as exc:  # not an npz at all
        raise ExportError(f"{path}: not a readable npz ({exc})") from exc
    missing = [k for k in NPZ_KEYS if k not in keys]
    if missing:
        raise ExportError(f"{path}: npz lacks keys {missing} (has {sorted(keys)}); expected MedMNIST-style "
                          "train_images/train_labels[, val_images/val_labels][, test_images/test_labels]")
    out = {}
    for split in ("train", "val", "test"):
        if f"{split}_images" in keys:
            if f"{split}_labels" not in keys:
                raise ExportError(f"{path}: has {split}_images but no {split}_labels")
            imgs = np.asarray(z[f"{split}_images"])
            labels = np.asarray(z[f"{split}_labels"]).reshape(-1).astype(np.int64)
            if imgs.shape[0] != labels.shape[0]:
                raise ExportError(f"{path}: {split}_images has {imgs.shape[0]} rows, {split}_labels {labels.shape[0]}")
            out[split] = (imgs, labels)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Splitting and decoding
# ---------------------------------------------------------------------------------------------------------------


# The classifier validation split of Kermany train: pneumonia-vit's --val-frac / --seed (its manifest card.training).
# Every job that must not see those images (cxr-clip training, int8 calibration) carves it out with these values.
VAL_FRAC, SPLIT_SEED = 0.1, 0


def stratified_split(labels: Sequence, val_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train_idx, val_idx): per class, a seeded shuffle, round(n * val_frac) (at least 1 when n > 1) go to val."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    tr, va = [], []
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = int(round(len(idx) * val_frac))
        if val_frac > 0 and n_val == 0 and len(idx) > 1:
            n_val = 1
        va.append(idx[:n_val])
        tr.append(idx[n_val:])
    return np.sort(np.concatenate(tr)), np.sort(np.concatenate(va))


def balanced_subset(labels: Sequence, per_class: int, seed: int) -> np.ndarray:
    """Indices of up to per_class items of every class (seeded), ordered by class then draw."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed + 1)
    out = []
    for c in sorted(set(labels.tolist())):
        idx = np.flatnonzero(labels == c)
        out.append(idx[rng.permutation(len(idx))][:per_class])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def read_rgb(path, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Decode as the app does (images.open_rgb: 16-bit PNG stored-range window, EXIF orientation applied) ->
    RGB uint8 [H,W,3]; resized (PIL bilinear) only when size is given and differs."""
    from PIL import Image

    from .images import open_rgb

    with open_rgb(path) as im:
        if size is not None:
            hw = (size, size) if isinstance(size, int) else tuple(size)
            if (im.height, im.width) != tuple(hw):
                im = im.resize((hw[1], hw[0]), Image.BILINEAR)
        return np.asarray(im, dtype=np.uint8).copy()


def load_images(paths: Sequence[str], size: int | None = None) -> np.ndarray:
    """Decodes all paths once into one uint8 array [N,H,W,3]."""
    first = read_rgb(paths[0], size)
    out = np.empty((len(paths),) + first.shape, dtype=np.uint8)
    out[0] = first
    for i, p in enumerate(paths[1:], start=1):
        a = read_rgb(p, size)
        if a.shape != first.shape:
            raise ExportError(f"{p}: decoded to {a.shape}, expected {first.shape}; pass a size to resize")
        out[i] = a
    return out


def kermany_split(root, split: str) -> list[tuple[str, str]]:
    """[(path, label)] of a Kermany-style split folder root/<split>/<label>/*."""
    return list_image_folder(Path(root) / split)


# ---------------------------------------------------------------------------------------------------------------
# The subcommand
# ---------------------------------------------------------------------------------------------------------------


def _to_pil(arr: np.ndarray):
    from PIL import Image

    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(arr)


def prepare(out: Path, *, folder=None, csv_path=None, npz=None, per_class: int = 16, val_frac: float = 0.1,
            seed: int = 0, size: int | None = None) -> dict:
    """Writes splits.csv, images/ (+ metadata.jsonl, labels.csv) and summary.json into out, atomically."""
    from .onnx_utils import atomic_dir

    given = [x is not None for x in (folder, csv_path, npz)]
    if sum(given) != 1:
        raise ExportError("give exactly one of --folder, --csv, --npz")
    if per_class < 0 or not (0.0 <= val_frac < 1.0):
        raise ExportError("--per-class must be >= 0 and --val-frac in [0, 1)")

    # rows: (source string, label, split); getter(i) -> PIL image for subset rows
    rows: list[tuple[str, str, str]] = []
    npz_data = None
    if npz is not None:
        npz_data = load_npz(npz)
        tr_imgs, tr_labels = npz_data["train"]
        if "val" in npz_data:
            parts = {"train": np.arange(len(tr_labels)), "val": None}
        else:
            tr_i, va_i = stratified_split(tr_labels, val_frac, seed)
            parts = {"train": tr_i, "val": va_i}
        for split in ("train", "val", "test"):
            if split == "val" and parts.get("val") is not None:
                idx, labels, src = parts["val"], tr_labels, "train"
            elif split == "train":
                idx, labels, src = parts["train"], tr_labels, "train"
            elif split in npz_data:
                idx, labels, src = np.arange(len(npz_data[split][1])), npz_data[split][1], split
            else:
                continue
            for i in idx:
                rows.append((f"npz:{src}:{int(i)}", NPZ_LABELS.get(int(labels[i]), str(int(labels[i]))), split))
    else:
        test_items: list[tuple[str, str]] = []
        if folder is not None:
            root = Path(folder)
            if not root.is_dir():
                raise ExportError(f"image folder not found: {root}")
            if (root / "train").is_dir():
                items = list_image_folder(root / "train")
                if (root / "test").is_dir():
                    test_items = list_image_folder(root / "test")
            else:
                items = list_image_folder(root)
        else:
            items = read_csv_list(csv_path)
        labels = [lab for _, lab in items]
        tr_i, va_i = stratified_split(labels, val_frac, seed)
        rows += [(items[i][0], items[i][1], "train") for i in tr_i]
        rows += [(items[i][0], items[i][1], "val") for i in va_i]
        rows += [(p, lab, "test") for p, lab in test_items]

    train_rows = [r for r in rows if r[2] == "train"]
    sub = balanced_subset([r[1] for r in train_rows], per_class, seed) if per_class else []

    def image_of(source: str):
        if source.startswith("npz:"):
            _, split, i = source.split(":")
            return _to_pil(npz_data[split][0][int(i)])
        return _to_pil(read_rgb(source))

    out = Path(out)
    summary: dict = {"source": str(folder or csv_path or npz), "seed": seed, "val_frac": val_frac,
                     "per_class": per_class, "counts": {}}
    for _, lab, split in rows:
        summary["counts"].setdefault(split, {}).setdefault(lab, 0)
        summary["counts"][split][lab] += 1
    with atomic_dir(out) as tmp:
        with open(tmp / "splits.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["source", "label", "split"])
            w.writerows(rows)
        img_dir = tmp / "images"
        img_dir.mkdir()
        meta, lab_rows = [], []
        counters: dict[str, int] = {}
        for j in sub:
            source, lab, _ = train_rows[int(j)]
            k = counters.get(lab, 0)
            counters[lab] = k + 1
            name = f"{lab.lower()}_{k:04d}.png"
            im = image_of(source)
            if size:
                from PIL import Image

                if im.size != (size, size):
                    im = im.resize((size, size), Image.BILINEAR)
            im.save(img_dir / name)
            meta.append({"file_name": name, "text": caption(lab)})
            lab_rows.append((name, lab, source))
        with open(img_dir / "metadata.jsonl", "w") as fh:
            for m in meta:
                fh.write(json.dumps(m) + "\n")
        with open(img_dir / "labels.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["file_name", "label", "source"])
            w.writerows(lab_rows)
        summary["subset"] = counters
        with open(tmp / "summary.json", "w") as fh:
            json.dump(summary, fh, indent=2)
            fh.write("\n")
    return summary


def run(args: argparse.Namespace) -> dict:
    summary = prepare(args.out, folder=args.folder, csv_path=args.csv, npz=args.npz, per_class=args.per_class,
                      val_frac=args.val_frac, seed=args.seed, size=args.size)
    print(json.dumps(summary["counts"]))
    return summary


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="labelled images/CSV/npz -> stratified splits + balanced LoRA subset",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--folder", type=Path, help="folder of <label>/ sub-folders (or of train/ and test/ splits)")
    src.add_argument("--csv", type=Path, help="CSV with columns path,label")
    src.add_argument("--npz", type=Path, help="MedMNIST-style npz")
    p.add_argument("--out", type=Path, required=True, help="output folder (replaced atomically)")
    p.add_argument("--per-class", type=int, default=16, help="images per class in the balanced subset (default 16)")
    p.add_argument("--val-frac", type=float, default=0.1, help="fraction of train held out for val (default 0.1)")
    p.add_argument("--size", type=int, default=None, help="resize subset images to SIZE x SIZE (PIL bilinear)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)
