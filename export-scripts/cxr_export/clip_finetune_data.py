"""Data of `cxr-export clip-finetune`: a new zero-shot task on the adult images of cxr-lung-masks.

Images: only the TRAINING part of lung-sam's split (lung_segmenter.split_indices, seed 0, >= 20 % held out by source
group; the 66 held-out images of lung-sam's card are never read here). That training part is split again, by source
group with its own seed, into fine-tuning images and validation images.

Tasks (labels from index.csv, one binary label per image):
  view    PA vs AP (AP and AP Supine): the projection of the frontal radiograph;
  supine  AP Supine vs the others (PA, AP): the patient lying down (supine film) or not.
Each label has training phrasings (captions sampled per step) and held-out phrasings, used only for validation
(zero-shot AUC / accuracy with prompts the fine-tuning never saw).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .errors import ExportError
from .lung_segmenter import LUNGS, default_data_dir, repo_root, source_group, split_indices

LUNG_SAM_SEED, LUNG_SAM_HOLDOUT = 0, 0.2  # lung-sam's card split (train-segmenter --seed 0 --holdout 0.2)

# Phrasings: {task: {label: (training captions, held-out prompts)}}. The first label is the positive class of the AUC.
TASKS: dict[str, dict[str, tuple[list[str], list[str]]]] = {
    "view": {
        "AP": (["an AP chest radiograph", "anteroposterior chest X-ray", "a frontal chest film taken AP",
                "chest X-ray, anteroposterior projection", "an AP view of the chest", "AP chest film of an adult",
                "a portable AP chest radiograph", "anteroposterior view chest radiograph"],
               ["an anteroposterior chest x-ray image", "AP projection of the chest", "frontal AP chest film",
                "chest radiograph in AP projection"]),
        "PA": (["a PA chest radiograph", "posteroanterior chest X-ray", "a frontal chest film taken PA",
                "chest X-ray, posteroanterior projection", "a PA view of the chest", "PA chest film of an adult",
                "a standing PA chest radiograph", "posteroanterior view chest radiograph"],
               ["a posteroanterior chest x-ray image", "PA projection of the chest", "frontal PA chest film",
                "chest radiograph in PA projection"]),
    },
    "supine": {
        "SUPINE": (["a supine chest radiograph", "chest X-ray of a patient lying supine", "a supine AP chest film",
                    "bedside supine chest X-ray", "AP supine view of the chest", "supine frontal chest radiograph"],
                   ["a chest x-ray taken with the patient supine", "supine portable chest film",
                    "chest radiograph, patient lying on the back"]),
        "NOT_SUPINE": (["an erect chest radiograph", "an upright chest X-ray", "a standing chest film",
                        "chest X-ray of a sitting or standing patient", "a PA or erect AP chest radiograph",
                        "upright frontal chest radiograph"],
                       ["a chest x-ray taken with the patient upright", "erect chest film",
                        "chest radiograph of a standing patient"]),
    },
}


def task_label(task: str, row: dict) -> str:
    """The label of one index.csv row for task. Raises ExportError for an unknown task or view."""
    view = row.get("view", "")
    if view not in ("PA", "AP", "AP Supine"):
        raise ExportError(f"{row.get('image')}: view {view!r} is not PA, AP or AP Supine")
    if task == "view":
        return "PA" if view == "PA" else "AP"
    if task == "supine":
        return "SUPINE" if view == "AP Supine" else "NOT_SUPINE"
    raise ExportError(f"unknown task {task!r} (known: {', '.join(TASKS)})")


def lung_sam_heldout_from_manifest(models_dir: Path | None = None) -> set[str]:
    """Image stems lung-sam's card lists as held out (public/models/manifest.json), empty if absent."""
    path = Path(models_dir or repo_root() / "public" / "models") / "manifest.json"
    if not path.exists():
        return set()
    m = json.loads(path.read_text())
    for e in m.get("models", m) if isinstance(m, dict) else m:
        if isinstance(e, dict) and e.get("id") == "lung-sam":
            return set(e.get("card", {}).get("training", {}).get("heldout_images", []))
    return set()


def adult_rows(data_dir: Path | None = None) -> tuple[list[dict], list[dict]]:
    """(training rows, lung-sam held-out rows) of cxr-lung-masks, exactly as train-segmenter splits them: rows with
    both radiologist lung boxes, grouped by source, split_indices(seed 0, holdout 0.2). Raises ExportError when the
    folder is not the cxr-lung-masks layout or when the split would train on an image lung-sam's card holds out."""
    data_dir = Path(data_dir or default_data_dir())
    idx, bx = data_dir / "index.csv", data_dir / "boxes.json"
    if not idx.exists() or not bx.exists():
        raise ExportError(f"{data_dir}: no index.csv / boxes.json (expected the cxr-lung-masks layout)")
    boxes = json.loads(bx.read_text())
    with open(idx, newline="") as f:
        rows = [r for r in csv.DictReader(f) if all(k in boxes.get(Path(r["image"]).stem, {}) for k in LUNGS)]
    tr, ev = split_indices([source_group(r) for r in rows], LUNG_SAM_SEED, LUNG_SAM_HOLDOUT)
    train, held = [rows[i] for i in tr], [rows[i] for i in ev]
    leak = {Path(r["image"]).stem for r in train} & lung_sam_heldout_from_manifest()
    if leak:
        raise ExportError(f"the split would train on {len(leak)} image(s) lung-sam's card holds out, e.g. "
                          f"{sorted(leak)[0]}: the lung-mask index or the split rule changed")
    return train, held


def task_split(task: str, seed: int, val_frac: float = 0.2, data_dir: Path | None = None,
               limit: int | None = None) -> dict:
    """Fine-tuning / validation split of lung-sam's training part for task, by source group (seed `seed`).

    Returns dict: labels [label names, positive first], train / val: lists of (image path, label index), and
    n_lung_sam_heldout (images never read). limit keeps the first `limit` training-part rows (tests)."""
    if task not in TASKS:
        raise ExportError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
    data_dir = Path(data_dir or default_data_dir())
    rows, held = adult_rows(data_dir)
    if limit:
        rows = rows[:limit]
    labels = list(TASKS[task])
    y = [labels.index(task_label(task, r)) for r in rows]
    tr, va = split_indices([source_group(r) for r in rows], seed, val_frac)
    out = {"labels": labels, "n_lung_sam_heldout": len(held),
           "train": [(str(data_dir / rows[i]["image"]), y[i]) for i in tr],
           "val": [(str(data_dir / rows[i]["image"]), y[i]) for i in va]}
    for part in ("train", "val"):
        present = {lab for _, lab in out[part]}
        if len(present) < 2:
            raise ExportError(f"task {task}: the {part} part has only label(s) {sorted(labels[i] for i in present)}"
                              f" ({len(out[part])} images); use more images or another seed")
    return out


def load_pixels(paths: list[str], size: int, mean, std) -> np.ndarray:
    """Images as the app feeds the classifier and cxr-clip: decoded RGB, squashed to size x size (PIL bilinear),
    /255, (x - mean) / std -> float32 [N,3,size,size]."""
    from .data import load_images

    a = load_images(paths, size).astype(np.float32) / 255.0
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def heldout_prompts(task: str) -> dict[str, list[str]]:
    """{label: held-out prompts} in the manifest's default_prompts format (never used for training)."""
    return {lab: list(v[1]) for lab, v in TASKS[task].items()}
