"""ONNX export of `cxr-export sam` (sam.py): sample inputs of the two graphs and export_sam, which writes
image_encoder.onnx and prompt_decoder.onnx, checks both against PyTorch and writes the manifest entry."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import manifest as mf
from .clip import atomic_dir, check_parity, export_onnx, run_onnx, torch_threads, write_json


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_inputs(info: dict, seed: int = 0, n_points: int = 2):
    """Deterministic sample feeds: an image, points (fg, bg + padding point), a box, an empty mask."""
    rng = np.random.default_rng(seed)
    s = info["image_size"]
    m = info["mask_size"]
    pixels = rng.standard_normal((1, 3, s, s)).astype(np.float32)
    pts = rng.uniform(0, s - 1, size=(1, n_points, 2)).astype(np.float32)
    coords = np.concatenate([pts, np.zeros((1, 1, 2), np.float32)], axis=1)
    labels = np.array([[1] + [0] * (n_points - 1) + [-1]], dtype=np.float32)
    box = np.array([[[s * 0.2, s * 0.25], [s * 0.7, s * 0.8]]], dtype=np.float32)
    box_labels = np.array([[2, 3]], dtype=np.float32)
    mask = rng.standard_normal((1, 1, m, m)).astype(np.float32)
    return dict(pixel_values=pixels, point_coords=coords, point_labels=labels, box_coords=box,
                box_labels=box_labels, mask_input=mask)


def export_sam(adapter, info: dict, out_dir: Path, model_id: str, weights: str, atol: float = 1e-4,
               rtol: float = 1e-4, seed: int = 0, write_manifest: bool = True, source: str = "",
               license_: str = "Apache-2.0", name: str | None = None) -> dict:
    import torch

    torch_threads(adapter.encoder, adapter.decoder)
    out_dir = Path(out_dir)
    x = sample_inputs(info, seed)
    pix = torch.from_numpy(x["pixel_values"])
    with torch.no_grad():
        feats = adapter.encoder(pix)
    feats = feats if isinstance(feats, tuple) else (feats,)
    fnames = list(adapter.feature_names)
    feats_np = {k: v.numpy() for k, v in zip(fnames, feats)}

    def dec_feeds(coords, labels, has_mask):
        return {**feats_np, "point_coords": coords, "point_labels": labels, "mask_input": x["mask_input"],
                "has_mask_input": np.array([has_mask], np.float32)}

    box_c, box_l = x["box_coords"], x["box_labels"]
    if adapter.padding_point == "always":
        box_c = np.concatenate([box_c, np.zeros((1, 1, 2), np.float32)], axis=1)
        box_l = np.concatenate([box_l, -np.ones((1, 1), np.float32)], axis=1)
    cases = {
        "points": dec_feeds(x["point_coords"], x["point_labels"], 0.0),
        "box": dec_feeds(box_c, box_l, 0.0),
        "points+mask": dec_feeds(x["point_coords"], x["point_labels"], 1.0),
    }
    refs = {}
    with torch.no_grad():
        for case, feeds in cases.items():
            masks, iou = adapter.decoder(*[torch.from_numpy(feeds[k]) for k in
                                           fnames + ["point_coords", "point_labels", "mask_input", "has_mask_input"]])
            refs[case] = {"masks_low_res": masks.numpy(), "iou_predictions": iou.numpy()}
    dec_inputs = fnames + ["point_coords", "point_labels", "mask_input", "has_mask_input"]
    parity = {}
    with atomic_dir(out_dir / model_id) as tmp:
        export_onnx(adapter.encoder, (pix,), tmp / "image_encoder.onnx", ["pixel_values"], fnames)
        f0 = cases["points"]
        export_onnx(adapter.decoder, tuple(torch.from_numpy(f0[k]) for k in dec_inputs), tmp / "prompt_decoder.onnx",
                    dec_inputs, ["masks_low_res", "iou_predictions"],
                    {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})
        enc_onnx = run_onnx(tmp / "image_encoder.onnx", {"pixel_values": x["pixel_values"]})
        parity["image_encoder"] = check_parity("image_encoder", feats_np, enc_onnx, atol, rtol)
        worst = 0.0
        for case, feeds in cases.items():
            worst = max(worst, check_parity(f"prompt_decoder[{case}]", refs[case],
                                            run_onnx(tmp / "prompt_decoder.onnx", feeds), atol, rtol))
        parity["prompt_decoder"] = worst
        s = info["image_size"]
        write_json(tmp / "sam_config.json", {**info, "append_padding_point": adapter.padding_point})
    final = out_dir / model_id
    files = [mf.file_record(out_dir, final / "image_encoder.onnx", "image_encoder"),
             mf.file_record(out_dir, final / "prompt_decoder.onnx", "prompt_decoder"),
             mf.file_record(out_dir, final / "sam_config.json", "config")]
    num_masks = int(refs["points"]["masks_low_res"].shape[1])
    entry = {
        "id": model_id,
        "name": name or f"{info['arch']} ({'random weights' if weights == 'random-fixture' else 'pretrained'})",
        "family": "sam",
        "task": "promptable-segmentation",
        "weights": weights,
        "license": license_,
        "source": source,
        "variants": {"fp32": {"dtype": "fp32", "files": files, "parity": mf.parity_record(
            max(parity.values()), f"PyTorch ({info['arch']}), fp32, atol {atol:g} + rtol {rtol:g} x max|ref|")}},
        "preprocessing": {"size": [s, s], "resize": "bilinear", "mean": list(info.get("mean", IMAGENET_MEAN)),
                          "std": list(info.get("std", IMAGENET_STD)), "layout": "NCHW"},
        "io": {"image_encoder": {"inputs": ["pixel_values"], "outputs": fnames},
               "prompt_decoder": {"inputs": dec_inputs, "outputs": ["masks_low_res", "iou_predictions"]}},
        "config": {
            **{k: v for k, v in info.items() if k not in ("mean", "std")},
            "resize": "longest-side", "pad": "bottom-right",
            "multimask_output": num_masks > 1, "num_masks": num_masks,
            "append_padding_point": adapter.padding_point,
            "point_labels": {"background": 0, "foreground": 1, "padding": -1, "box_top_left": 2,
                             "box_bottom_right": 3},
            "parity": parity,
        },
        "card": {"summary": "Promptable segmentation: points/box -> low-res mask logits + IoU estimates."
                 + (" Random weights: a test fixture, its masks mean nothing." if weights == "random-fixture" else ""),
                 "limitations": "Not for clinical use."},
    }
    if write_manifest:
        mf.upsert_entry(out_dir, entry)
    return entry
