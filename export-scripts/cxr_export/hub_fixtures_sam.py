"""The SAM repo of `cxr-export hub-fixtures` (hub_fixtures.py): a tiny random transformers SamModel in the layout of
Xenova/slimsam-77-uniform and Xenova/sam-vit-base (Optimum's SamOnnxConfig; transformers.js SamModel sessions
'vision_encoder' and 'prompt_encoder_mask_decoder', src/models/session_config.js):
  onnx/vision_encoder.onnx               pixel_values [B,3,S,S] -> image_embeddings [B,C,E,E],
                                         image_positional_embeddings [B,C,E,E]
  onnx/prompt_encoder_mask_decoder.onnx  image_embeddings, image_positional_embeddings, input_points [B,P,N,2]
                                         (pixels of the resized S-longest-side image), input_labels [B,P,N]
                                         (int64; 1 foreground, 0 background, -10 padding) ->
                                         iou_scores [B,P,3], pred_masks [B,P,3,4E,4E] (multimask_output=True)
Box prompts: the published layout has no input_boxes input (transformers.js passes input_boxes only when the graph
declares it), so tiny-sam-boxes carries a second decoder graph with input_boxes [B,P,4] (x0, y0, x1, y1 resized
pixels) beside the point inputs; with boxes transformers' prompt encoder adds no padding point.
Goldens: transformers' SamModel + SamProcessor pipeline (sam_layouts_hf.hf_pipeline), post_process_masks without
binarisation, on a 64x48 synthetic image (longest side = S, so the resize is the identity and only the padding acts).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import seed_all
from .hub_fixtures_common import ORG, _np, export_graph, save_config, save_processor, write_golden, write_image

POINT = ([[20.0, 24.0]], [1])
POINTS = ([[20.0, 24.0], [50.0, 10.0]], [1, 0])
BOX = [8.0, 6.0, 34.0, 42.0]
BOX_POINT = ([[44.0, 24.0]], [1])


def _model(seed: int):
    from transformers import SamModel

    from .sam_models import reinit_, sam_config

    seed_all(seed)
    cfg = sam_config("tiny")
    model = SamModel(cfg)
    reinit_(model, seed=seed)
    return model.eval()


def _decoder_classes(model):
    import torch

    class VisionEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            emb = self.m.get_image_embeddings(pixel_values)
            return emb, self.m.get_image_wide_positional_embeddings().repeat(pixel_values.shape[0], 1, 1, 1)

    def decode(image_embeddings, image_positional_embeddings, input_points, input_labels, input_boxes):
        # SamModel.forward from precomputed embeddings (Optimum's SamOnnxConfig): prompt encoder, then mask decoder
        sparse, dense = model.prompt_encoder(input_points=input_points, input_labels=input_labels,
                                             input_boxes=input_boxes, input_masks=None)
        out = model.mask_decoder(image_embeddings=image_embeddings,
                                 image_positional_embeddings=image_positional_embeddings,
                                 sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                 multimask_output=True)
        return out[1], out[0]  # iou_scores, pred_masks

    class PointDecoder(torch.nn.Module):
        """Optimum's prompt_encoder_mask_decoder: point prompts (a padding point is appended, as SamModel does)."""

        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, image_embeddings, image_positional_embeddings, input_points, input_labels):
            return decode(image_embeddings, image_positional_embeddings, input_points, input_labels, None)

    class BoxDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, image_embeddings, image_positional_embeddings, input_points, input_labels, input_boxes):
            return decode(image_embeddings, image_positional_embeddings, input_points, input_labels, input_boxes)

    return VisionEncoder, PointDecoder, BoxDecoder


def _write_repo(out: Path, name: str, model, proc, enc_cls, dec_cls, dec_feeds: dict, dec_inputs: list[str],
                pix: np.ndarray) -> dict:
    import torch

    repo = out / ORG / name
    (repo / "onnx").mkdir(parents=True, exist_ok=True)
    save_config(model, repo)
    save_processor(proc, repo, "SamProcessor")
    t_pix = torch.from_numpy(pix)
    with torch.no_grad():
        emb, pe = (_np(t) for t in enc_cls()(t_pix))
    ax = {0: "batch_size"}
    par = {"vision_encoder": export_graph(enc_cls(), (t_pix,), repo / "onnx", "vision_encoder", ["pixel_values"],
                                          ["image_embeddings", "image_positional_embeddings"],
                                          {"pixel_values": {0: "batch_size"}, "image_embeddings": ax,
                                           "image_positional_embeddings": ax},
                                          {"image_embeddings": emb, "image_positional_embeddings": pe},
                                          {"pixel_values": pix})}
    feeds = {"image_embeddings": emb, "image_positional_embeddings": pe, **dec_feeds}
    t_feeds = tuple(torch.from_numpy(feeds[k]) for k in dec_inputs)
    with torch.no_grad():
        iou, masks = (_np(t) for t in dec_cls()(*t_feeds))
    pts_ax = {0: "batch_size", 1: "point_batch_size", 2: "nb_points_per_image"}
    dyn = {"image_embeddings": ax, "image_positional_embeddings": ax, "input_points": pts_ax,
           "input_labels": pts_ax, "input_boxes": {0: "batch_size", 1: "nb_boxes"},
           "iou_scores": {0: "batch_size", 1: "point_batch_size"}, "pred_masks": {0: "batch_size", 1: "point_batch_size"}}
    par["prompt_encoder_mask_decoder"] = export_graph(
        dec_cls(), t_feeds, repo / "onnx", "prompt_encoder_mask_decoder", dec_inputs, ["iou_scores", "pred_masks"],
        {k: v for k, v in dyn.items() if k in dec_inputs or k in ("iou_scores", "pred_masks")},
        {"iou_scores": iou, "pred_masks": masks}, feeds)
    return par


def _case(model, proc, rgb, points=None, labels=None, box=None) -> dict:
    """One prompt through transformers' SamProcessor + SamModel (PyTorch): the model inputs the processor made and
    the outputs (iou_scores [1,1,3], pred_masks [1,1,3,m,m], masks = post_process_masks(binarize=False) [1,3,H,W])."""
    from .sam_layouts_hf import hf_pipeline

    low, iou, up, _ = hf_pipeline(model, proc, rgb, points, labels, box)
    case = {"prompts": {}, "inputs": {}, "outputs": {"iou_scores": iou[None, None], "pred_masks": low[None, None],
                                                     "masks": up[None]}}
    if points is not None:
        case["prompts"].update(points=points, labels=labels)
        case["inputs"]["input_points"] = np.asarray(points, np.float32)[None, None]
        case["inputs"]["input_labels"] = np.asarray(labels, np.int64)[None, None]
    if box is not None:
        case["prompts"]["box"] = box
        case["inputs"]["input_boxes"] = np.asarray(box, np.float32)[None, None]
    return case


def sam_repo(out: Path, gdir: Path, seed: int) -> dict:
    """tiny-sam (points, the published layout) and tiny-sam-boxes (the same weights, decoder with input_boxes), one
    golden file each: _goldens/tiny-sam.json (cases point, points), _goldens/tiny-sam-boxes.json (box, box_point)."""
    from PIL import Image

    from .sam_layouts_hf import hf_processor

    model = _model(seed)
    s = int(model.config.vision_config.image_size)
    e = int(model.config.prompt_encoder_config.image_embedding_size)
    proc = hf_processor(s, 4 * e)
    img_name, rgb = write_image(gdir, s, s * 3 // 4)
    pix = proc(images=Image.fromarray(rgb, "RGB"), return_tensors="np")["pixel_values"].astype(np.float32)
    enc, dec, box_dec = _decoder_classes(model)
    pts = {"input_points": np.asarray(POINTS[0], np.float32)[None, None],
           "input_labels": np.asarray(POINTS[1], np.int64)[None, None]}
    dec_in = ["image_embeddings", "image_positional_embeddings", "input_points", "input_labels"]
    par = _write_repo(out, "tiny-sam", model, proc, enc, dec, pts, dec_in, pix)
    bp = {"input_points": np.asarray(BOX_POINT[0], np.float32)[None, None],
          "input_labels": np.asarray(BOX_POINT[1], np.int64)[None, None],
          "input_boxes": np.asarray(BOX, np.float32)[None, None]}
    par_b = _write_repo(out, "tiny-sam-boxes", model, proc, enc, box_dec, bp, dec_in + ["input_boxes"], pix)
    ref = ("transformers SamModel + SamProcessor (SamImageProcessorPil), multimask_output=True, "
           "post_process_masks(binarize=False); PyTorch fp32")
    common = {"image": img_name, "original_size": [int(rgb.shape[0]), int(rgb.shape[1])],
              "inputs": {"pixel_values": pix}}
    write_golden(gdir, "tiny-sam", {
        "repo": f"{ORG}/tiny-sam", "architecture": "SamModel", **common,
        "cases": {"point": _case(model, proc, rgb, *POINT), "points": _case(model, proc, rgb, *POINTS)},
        "meta": {"reference": ref, "atol": 1e-4, "parity": par}})
    write_golden(gdir, "tiny-sam-boxes", {
        "repo": f"{ORG}/tiny-sam-boxes", "architecture": "SamModel", **common,
        "cases": {"box_point": _case(model, proc, rgb, *BOX_POINT, box=BOX),
                  "box_only_points_empty": _box_only(model, proc, rgb)},
        "meta": {"reference": ref, "atol": 1e-4, "parity": par_b}})
    return {"repo": f"{ORG}/tiny-sam", "repo_boxes": f"{ORG}/tiny-sam-boxes", "parity": par, "parity_boxes": par_b}


def _box_only(model, proc, rgb) -> dict:
    """A box alone: PyTorch with input_boxes only; the decoder graph is fed input_points [1,1,0,2] and
    input_labels [1,1,0] (no point), which gives the same prompt tokens."""
    case = _case(model, proc, rgb, box=BOX)
    case["inputs"]["input_points"] = np.zeros((1, 1, 0, 2), np.float32)
    case["inputs"]["input_labels"] = np.zeros((1, 1, 0), np.int64)
    return case
