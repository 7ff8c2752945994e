"""The cases both SAM layout goldens share (sam_layouts.py): the synthetic test image, the prompts in original image
pixels (points, box, box + point) and the golden case document (prompts, low-res mask logits, IoU predictions and
upscaled mask logits, tensors as base64 float32)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


IMAGE_W, IMAGE_H = 80, 60


def synthetic_image(w: int = IMAGE_W, h: int = IMAGE_H) -> np.ndarray:
    """Deterministic RGB uint8 [h, w, 3]: two dark 'lungs' on a brighter gradient, non-square (tests padding)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    img = 150 + 60 * (yy / h) - 30 * (xx / w)
    for cx in (0.3, 0.7):
        d = ((xx - cx * w) / (0.16 * w)) ** 2 + ((yy - 0.5 * h) / (0.35 * h)) ** 2
        img = np.where(d < 1, 40 + 30 * d, img)
    img = img + 8 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    g = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return np.stack([g, np.clip(g.astype(int) + 3, 0, 255).astype(np.uint8), g], axis=-1)


def write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG", optimize=False, compress_level=9)


# Prompts in ORIGINAL image pixels (x, y); labels 1 fg, 0 bg.
POINTS = ([[24.0, 30.0], [60.0, 12.0]], [1, 0])
BOX = [12.0, 8.0, 38.0, 52.0]
BOX_POINT = ([[56.0, 30.0]], [1])


def _tensor(arr) -> dict:
    """The golden tensor format of cxr_export.fixtures.tensor (not imported: fixtures imports this module)."""
    a = np.asarray(arr)
    if a.dtype.kind in "iu":
        return {"dims": list(a.shape), "dtype": "int64", "data": [int(v) for v in a.reshape(-1)]}
    a = a.astype(np.float32)
    # 9 significant digits round-trip float32 exactly; fixed formatting keeps the bytes reproducible
    return {"dims": list(a.shape), "dtype": "float32", "data": [float(f"{v:.9g}") for v in a.reshape(-1).tolist()]}


def _write(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def _case_doc(model_id: str, layout: str, case: str, prompts: dict, low, iou, masks, reference: str,
              extra: dict | None = None) -> dict:
    return {"model": model_id, "layout": layout, "case": case, "image": "../image.png",
            "original_size": [IMAGE_H, IMAGE_W], "prompts": prompts, "multimask_output": True,
            "outputs": {"low_res_logits": _tensor(low), "iou_predictions": _tensor(iou),
                        "mask_logits": _tensor(masks)},
            "meta": {"reference": reference, "atol": 1e-4, **(extra or {})}}
