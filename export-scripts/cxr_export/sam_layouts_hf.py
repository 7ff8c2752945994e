"""The transformers layouts of the SAM goldens (sam_layouts.py): transformers' SamModel + SamProcessor as the reference
for tiny-sam in export-scripts' layout and for the transformers.js layout (vision_encoder / prompt_encoder_mask_decoder
graphs), exported and with pipeline goldens."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .clip import atomic_dir, export_onnx, run_onnx, seed_all, write_json
from .errors import ExportError
from .sam_layouts_cases import BOX, BOX_POINT, POINTS, _case_doc, _tensor, _write, synthetic_image


def hf_processor(image_size: int, mask_size: int, mean=None, std=None):
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil

    kw = {}
    if mean is not None:
        kw = dict(image_mean=list(mean), image_std=list(std))
    return SamImageProcessorPil(size={"longest_edge": image_size}, pad_size={"height": image_size, "width": image_size},
                                mask_size={"longest_edge": mask_size},
                                mask_pad_size={"height": mask_size, "width": mask_size}, **kw)


def hf_pipeline(model, proc, image: np.ndarray, points=None, labels=None, box=None, mask=None):
    """transformers' documented SAM inference: processor -> SamModel -> post_process_masks (logits, no binarize).
    Returns (low_res [3,m,m], iou [3], masks [3,H,W], pixel_values)."""
    import torch
    from PIL import Image

    inputs = proc(images=Image.fromarray(image, "RGB"), return_tensors="pt")
    pix = inputs["pixel_values"]
    orig = inputs["original_sizes"]
    resh = inputs["reshaped_input_sizes"]
    oh, ow = (int(v) for v in orig[0])
    rh, rw = (int(v) for v in resh[0])
    kw = {}
    # the processor's _normalize_coordinates: x * (rw / ow), y * (rh / oh)
    if points is not None:
        p = torch.tensor(points, dtype=torch.float32)[None, None]
        p[..., 0] *= rw / ow
        p[..., 1] *= rh / oh
        kw["input_points"] = p
        kw["input_labels"] = torch.tensor(labels, dtype=torch.long)[None, None]
    if box is not None:
        b = torch.tensor(box, dtype=torch.float32)[None, None]
        b[..., 0::2] *= rw / ow
        b[..., 1::2] *= rh / oh
        kw["input_boxes"] = b
    if mask is not None:
        kw["input_masks"] = torch.from_numpy(mask)[None]
    with torch.no_grad():
        out = model(pixel_values=pix, multimask_output=True, **kw)
        up = proc.post_process_masks(out.pred_masks, orig, resh, binarize=False)[0]
    return out.pred_masks[0, 0].numpy(), out.iou_scores[0, 0].numpy(), up[0].numpy(), pix.numpy()


def tiny_sam_goldens(gdir: Path, seed: int = 0) -> dict:
    """Pipeline goldens for the committed tiny-sam fixture (export-scripts' layout). Rebuilds the same seeded model
    that `cxr-export fixtures --only sam` wrote and checks it still matches the graph on disk (else the goldens
    would describe other weights)."""
    from .sam import build_sam, sample_inputs
    from .clip import models_dir_default

    adapter, info = build_sam("sam-vit-b", None, "tiny", seed)
    model = adapter.model
    onnx_enc = models_dir_default() / "tiny-sam" / "image_encoder.onnx"
    x = sample_inputs(info, seed)
    import torch

    with torch.no_grad():
        ref = adapter.encoder(torch.from_numpy(x["pixel_values"])).numpy()
    got = run_onnx(onnx_enc, {"pixel_values": x["pixel_values"]})["image_embeddings"]
    if float(np.max(np.abs(ref - got))) > 1e-4:
        raise ExportError("tiny-sam on disk is not the seeded fixture: run `cxr-export fixtures --only sam` first")
    proc = hf_processor(info["image_size"], info["mask_size"])
    return _hf_cases(gdir / "tiny-sam", "tiny-sam", "cxr", model, proc, with_box=True, with_mask=True)


def _hf_cases(gdir: Path, mid: str, layout: str, model, proc, with_box: bool, with_mask: bool) -> dict:
    img = synthetic_image()
    ref = "transformers SamModel + SamProcessor (SamImageProcessorPil), post_process_masks(binarize=False)"
    low, iou, up, pix = hf_pipeline(model, proc, img, *POINTS)
    docs = {"points": _case_doc(mid, layout, "points", {"points": POINTS[0], "labels": POINTS[1]}, low, iou, up, ref,
                                {"pixel_values": _tensor(pix)})}
    best = int(np.argmax(iou))
    if with_box:
        l2, i2, u2, _ = hf_pipeline(model, proc, img, box=BOX)
        docs["box"] = _case_doc(mid, layout, "box", {"box": BOX}, l2, i2, u2, ref)
        l3, i3, u3, _ = hf_pipeline(model, proc, img, *BOX_POINT, box=BOX)
        docs["box_point"] = _case_doc(mid, layout, "box_point", {"box": BOX, "points": BOX_POINT[0],
                                                                   "labels": BOX_POINT[1]}, l3, i3, u3, ref)
    if with_mask:
        prev = low[best:best + 1].astype(np.float32)
        l4, i4, u4, _ = hf_pipeline(model, proc, img, *POINTS, mask=prev)
        docs["points_mask"] = _case_doc(mid, layout, "points_mask", {"points": POINTS[0], "labels": POINTS[1],
                                                                      "mask_from": "points", "mask_index": best},
                                        l4, i4, u4, ref)
    else:
        one = ([POINTS[0][0]], [1])
        l5, i5, u5, _ = hf_pipeline(model, proc, img, *one)
        docs["point"] = _case_doc(mid, layout, "point", {"points": one[0], "labels": one[1]}, l5, i5, u5, ref)
    for case, d in docs.items():
        _write(gdir / f"{case}.json", d)
    return {"id": mid, "cases": sorted(docs)}


def export_transformersjs(out_dir: Path, gdir: Path, seed: int = 1, model_id: str = "tiny-sam-hf") -> dict:
    """A tiny random transformers SamModel written in the Optimum / transformers.js layout, with goldens."""
    import torch
    from transformers import SamModel

    from .sam import reinit_, sam_config

    seed_all(seed)
    model = SamModel(sam_config("tiny"))
    reinit_(model, seed=seed)
    model.eval()
    cfg = model.config
    s = int(cfg.vision_config.image_size)
    e = int(cfg.prompt_encoder_config.image_embedding_size)

    class VisionEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            emb = self.m.get_image_embeddings(pixel_values)
            return emb, self.m.get_image_wide_positional_embeddings().repeat(pixel_values.shape[0], 1, 1, 1)

    class PromptMaskDecoder(torch.nn.Module):
        """Optimum's SamOnnxConfig 'prompt_encoder_mask_decoder' behaviour: SamModel.forward with embeddings."""

        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_points, input_labels, image_embeddings, image_positional_embeddings):
            sparse, dense = self.m.prompt_encoder(input_points=input_points, input_labels=input_labels,
                                                  input_boxes=None, input_masks=None)
            masks, iou = self.m.mask_decoder(image_embeddings=image_embeddings,
                                             image_positional_embeddings=image_positional_embeddings,
                                             sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                             multimask_output=True)[:2]
            return iou, masks

    rng = np.random.default_rng(seed)
    pix = torch.from_numpy(rng.standard_normal((1, 3, s, s)).astype(np.float32))
    pts = torch.tensor([[[[10.0, 12.0], [40.0, 30.0]]]])
    lab = torch.tensor([[[1, 0]]], dtype=torch.long)
    with torch.no_grad():
        emb, pe = VisionEncoder()(pix)
    with atomic_dir(out_dir / model_id) as tmp:
        (tmp / "onnx").mkdir()
        export_onnx(VisionEncoder(), (pix,), tmp / "onnx" / "vision_encoder.onnx", ["pixel_values"],
                    ["image_embeddings", "image_positional_embeddings"])
        export_onnx(PromptMaskDecoder(), (pts, lab, emb, pe), tmp / "onnx" / "prompt_encoder_mask_decoder.onnx",
                    ["input_points", "input_labels", "image_embeddings", "image_positional_embeddings"],
                    ["iou_scores", "pred_masks"],
                    {"input_points": {2: "point_batch_size"}, "input_labels": {2: "point_batch_size"}})
        got = run_onnx(tmp / "onnx" / "prompt_encoder_mask_decoder.onnx",
                       {"input_points": pts.numpy(), "input_labels": lab.numpy(), "image_embeddings": emb.numpy(),
                        "image_positional_embeddings": pe.numpy()})
        with torch.no_grad():
            iou_ref, masks_ref = PromptMaskDecoder()(pts, lab, emb, pe)
        diff = float(max(np.max(np.abs(got["iou_scores"] - iou_ref.numpy())),
                         np.max(np.abs(got["pred_masks"] - masks_ref.numpy()))))
        if diff > 1e-4:
            raise ExportError(f"transformers.js layout: ONNX vs PyTorch {diff:g} > 1e-4")
        cfg_doc = json.loads(cfg.to_json_string())
        write_json(tmp / "config.json", cfg_doc)
        proc = hf_processor(s, 4 * e)
        write_json(tmp / "preprocessor_config.json", json.loads(proc.to_json_string()))
    final = out_dir / model_id
    entry = {
        "id": model_id, "name": "Tiny SAM, transformers.js layout (random weights)", "family": "sam",
        "task": "promptable-segmentation", "weights": "random-fixture", "license": "Apache-2.0",
        "source": "random-init (tiny) transformers SamModel, written as Optimum/transformers.js "
                  "(onnx/vision_encoder.onnx + onnx/prompt_encoder_mask_decoder.onnx)",
        "variants": {"fp32": {"dtype": "fp32", "files": [
            mf.file_record(out_dir, final / "onnx" / "vision_encoder.onnx", "image_encoder"),
            mf.file_record(out_dir, final / "onnx" / "prompt_encoder_mask_decoder.onnx", "prompt_decoder"),
            mf.file_record(out_dir, final / "config.json", "config"),
            mf.file_record(out_dir, final / "preprocessor_config.json", "preprocessor_config")],
            "parity": mf.parity_record(diff, "PyTorch (transformers SamModel), fp32, atol 0.0001")}},
        "preprocessing": {"size": [s, s], "resize": "bilinear", "mean": list(proc.image_mean),
                          "std": list(proc.image_std), "layout": "NCHW"},
        "io": {"image_encoder": {"inputs": ["pixel_values"],
                                 "outputs": ["image_embeddings", "image_positional_embeddings"]},
               "prompt_decoder": {"inputs": ["input_points", "input_labels", "image_embeddings",
                                             "image_positional_embeddings"],
                                  "outputs": ["iou_scores", "pred_masks"]}},
        "config": {"layout": "transformers.js", "arch": "sam-vit-b", "image_size": s, "embedding_size": e,
                   "mask_size": 4 * e, "resize": "longest-side", "pad": "bottom-right", "multimask_output": True,
                   "num_masks": 3, "append_padding_point": "always"},
        "card": {"summary": "Promptable segmentation in the transformers.js / Optimum layout. Random weights: a test "
                            "fixture, its masks mean nothing.", "limitations": "Not for clinical use."},
    }
    mf.upsert_entry(out_dir, entry)
    rep = _hf_cases(gdir / model_id, model_id, "transformers.js", model, proc, with_box=False, with_mask=False)
    return {**rep, "parity": diff}
