"""Tiny random SAM fixtures in the two ONNX layouts people publish, and end-to-end PyTorch goldens for the app.

Layouts (the app's lib/segment/layouts.ts detects them from the graphs' input/output names):

  segment-anything   encoder.onnx  input_image float32 [1,3,S,S] (normalised, padded; samexporter without
                     --use-preprocess) -> image_embeddings [1,C,E,E]
                     decoder.onnx  segment_anything/utils/onnx.py SamOnnxModel, exactly as
                     scripts/export_onnx_model.py writes it: image_embeddings, point_coords [1,N,2],
                     point_labels [1,N], mask_input [1,1,4E,4E], has_mask_input [1], orig_im_size [2]
                     -> masks [1,4,H,W] (logits at the original size), iou_predictions [1,4], low_res_masks
                     [1,4,4E,4E]. Mask 0 is the single-mask token, 1..3 the multimask outputs.
  transformers.js    onnx/vision_encoder.onnx  pixel_values -> image_embeddings, image_positional_embeddings
  (Optimum, Xenova)  onnx/prompt_encoder_mask_decoder.onnx  input_points float32 [1,1,N,2], input_labels int64
                     [1,1,N], image_embeddings, image_positional_embeddings -> iou_scores [1,1,3],
                     pred_masks [1,1,3,4E,4E]; config.json (SamConfig) and preprocessor_config.json beside them.

Goldens (tests/segment-goldens/<id>/<case>.json) are computed by each architecture's own PyTorch pipeline on
one synthetic image (tests/segment-goldens/image.png, made here, no data): transformers SamModel + its
SamProcessor (PIL backend) for export-scripts' own layout (tiny-sam) and the transformers.js layout;
segment_anything's SamPredictor for the segment-anything layout. Each holds the prompts in original image
pixels, the low-res mask logits, the IoU predictions and the mask logits upscaled to the original size.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .clip import atomic_dir, export_onnx, run_onnx, seed_all, write_json
from .errors import ExportError

IMAGE_W, IMAGE_H = 80, 60


def segment_goldens_dir_default() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "segment-goldens"


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


# ----------------------------------------------------------------------------------------------------------------
# transformers SamModel + SamProcessor (tiny-sam in export-scripts' layout, and the transformers.js layout)
# ----------------------------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------------------------
# segment_anything (Meta's package): SamOnnxModel decoder + SamPredictor goldens
# ----------------------------------------------------------------------------------------------------------------


def tiny_segment_anything(seed: int = 2):
    """segment_anything.modeling.Sam with a tiny ViT (64 px, patch 8, width 32, 2 blocks) and a 32-ch decoder."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    from .sam import reinit_

    seed_all(seed)
    s, patch, c = 64, 8, 32
    e = s // patch
    sam = Sam(
        image_encoder=ImageEncoderViT(depth=2, embed_dim=32, img_size=s, mlp_ratio=2.0,
                                      norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=2, patch_size=patch,
                                      qkv_bias=True, use_rel_pos=True, global_attn_indexes=[1], window_size=4,
                                      out_chans=c),
        prompt_encoder=PromptEncoder(embed_dim=c, image_embedding_size=(e, e), input_image_size=(s, s),
                                     mask_in_chans=8),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer=TwoWayTransformer(
            depth=2, embedding_dim=c, mlp_dim=64, num_heads=2), transformer_dim=c, iou_head_depth=3,
            iou_head_hidden_dim=32),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375])
    reinit_(sam, seed=seed)
    return sam.eval(), dict(image_size=s, embedding_size=e, embedding_dim=c, mask_size=4 * e)


def export_segment_anything(out_dir: Path, gdir: Path, seed: int = 2, model_id: str = "tiny-sam-onnx") -> dict:
    import warnings

    import torch
    from segment_anything import SamPredictor
    from segment_anything.utils.onnx import SamOnnxModel

    sam, info = tiny_segment_anything(seed)
    s, e = info["image_size"], info["embedding_size"]

    class Encoder(torch.nn.Module):  # samexporter's ImageEncoderOnnxModel without --use-preprocess
        def __init__(self):
            super().__init__()
            self.image_encoder = sam.image_encoder

        def forward(self, input_image):
            return self.image_encoder(input_image)

    dec = SamOnnxModel(sam, return_single_mask=False)
    # scripts/export_onnx_model.py's dummy inputs, names and dynamic axes
    emb_size = sam.prompt_encoder.image_embedding_size
    dummy = {
        "image_embeddings": torch.randn(1, info["embedding_dim"], *emb_size, dtype=torch.float),
        "point_coords": torch.randint(low=0, high=s, size=(1, 5, 2), dtype=torch.float),
        "point_labels": torch.randint(low=0, high=4, size=(1, 5), dtype=torch.float),
        "mask_input": torch.randn(1, 1, *[4 * x for x in emb_size], dtype=torch.float),
        "has_mask_input": torch.tensor([1], dtype=torch.float),
        "orig_im_size": torch.tensor([1500, 2250], dtype=torch.float),
    }
    rng = np.random.default_rng(seed)
    pix = torch.from_numpy(rng.standard_normal((1, 3, s, s)).astype(np.float32))
    with atomic_dir(out_dir / model_id) as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        export_onnx(Encoder(), (pix,), tmp / "encoder.onnx", ["input_image"], ["image_embeddings"])
        export_onnx(dec, tuple(dummy.values()), tmp / "decoder.onnx", list(dummy),
                    ["masks", "iou_predictions", "low_res_masks"],
                    {"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}})
        feeds = {k: v.numpy() for k, v in dummy.items()}
        got = run_onnx(tmp / "decoder.onnx", feeds)
        with torch.no_grad():
            ref = dec(*dummy.values())
        diff = float(max(np.max(np.abs(got[k] - r.numpy())) for k, r in
                         zip(["masks", "iou_predictions", "low_res_masks"], ref)))
        with torch.no_grad():
            eref = Encoder()(pix).numpy()
        diff = max(diff, float(np.max(np.abs(run_onnx(tmp / "encoder.onnx", {"input_image": pix.numpy()})
                                              ["image_embeddings"] - eref))))
        if diff > 1e-4:
            raise ExportError(f"segment-anything layout: ONNX vs PyTorch {diff:g} > 1e-4")
    final = out_dir / model_id
    mean = [v / 255 for v in (123.675, 116.28, 103.53)]
    std = [v / 255 for v in (58.395, 57.12, 57.375)]
    entry = {
        "id": model_id, "name": "Tiny SAM, segment-anything ONNX layout (random weights)", "family": "sam",
        "task": "promptable-segmentation", "weights": "random-fixture", "license": "Apache-2.0",
        "source": "random-init (tiny) segment_anything Sam; decoder = segment_anything.utils.onnx.SamOnnxModel "
                  "(scripts/export_onnx_model.py), encoder = samexporter's input_image graph",
        "variants": {"fp32": {"dtype": "fp32", "files": [
            mf.file_record(out_dir, final / "encoder.onnx", "image_encoder"),
            mf.file_record(out_dir, final / "decoder.onnx", "prompt_decoder")],
            "parity": mf.parity_record(diff, "PyTorch (segment_anything), fp32, atol 0.0001")}},
        "preprocessing": {"size": [s, s], "resize": "bilinear", "mean": mean, "std": std, "layout": "NCHW"},
        "io": {"image_encoder": {"inputs": ["input_image"], "outputs": ["image_embeddings"]},
               "prompt_decoder": {"inputs": list(dummy), "outputs": ["masks", "iou_predictions", "low_res_masks"]}},
        "config": {"layout": "segment-anything", "arch": "sam-vit-b", **info, "resize": "longest-side",
                   "pad": "bottom-right", "multimask_output": True, "num_masks": 4,
                   "append_padding_point": "when-no-box"},
        "card": {"summary": "Promptable segmentation in segment-anything's ONNX layout. Random weights: a test "
                            "fixture, its masks mean nothing.", "limitations": "Not for clinical use."},
    }
    mf.upsert_entry(out_dir, entry)

    # goldens: Meta's SamPredictor (ResizeLongestSide, its own normalisation, prompt encoder with real boxes)
    img = synthetic_image()
    pred = SamPredictor(sam)
    pred.set_image(img, image_format="RGB")
    ref = "segment_anything SamPredictor.predict(multimask_output=True, return_logits=True)"
    mid = model_id

    def run(points=None, labels=None, box=None, mask=None):
        with torch.no_grad():
            m, iou, low = pred.predict(point_coords=None if points is None else np.array(points, np.float32),
                                       point_labels=None if labels is None else np.array(labels),
                                       box=None if box is None else np.array(box, np.float32), mask_input=mask,
                                       multimask_output=True, return_logits=True)
        return low, iou, m

    docs = {}
    low, iou, m = run(*POINTS)
    docs["points"] = _case_doc(mid, "segment-anything", "points", {"points": POINTS[0], "labels": POINTS[1]},
                               low, iou, m, ref)
    best = int(np.argmax(iou))
    l2, i2, m2 = run(box=BOX)
    docs["box"] = _case_doc(mid, "segment-anything", "box", {"box": BOX}, l2, i2, m2, ref)
    l3, i3, m3 = run(*BOX_POINT, box=BOX)
    docs["box_point"] = _case_doc(mid, "segment-anything", "box_point",
                                  {"box": BOX, "points": BOX_POINT[0], "labels": BOX_POINT[1]}, l3, i3, m3, ref)
    l4, i4, m4 = run(*POINTS, mask=low[best:best + 1])
    docs["points_mask"] = _case_doc(mid, "segment-anything", "points_mask",
                                    {"points": POINTS[0], "labels": POINTS[1], "mask_from": "points",
                                     "mask_index": best}, l4, i4, m4, ref)
    for case, d in docs.items():
        _write(gdir / mid / f"{case}.json", d)
    return {"id": mid, "cases": sorted(docs), "parity": diff}


def write_layout_fixtures(out_dir: Path, gdir: Path, which: list[str]) -> dict:
    import torch

    torch.set_num_threads(1)
    gdir = Path(gdir)
    write_png(gdir / "image.png", synthetic_image())
    rep = {}
    for w in which:
        d = gdir / {"sam-goldens": "tiny-sam", "sam-hf": "tiny-sam-hf", "sam-onnx": "tiny-sam-onnx"}[w]
        if d.exists():
            for p in d.glob("*.json"):
                p.unlink()
        if w == "sam-goldens":
            rep[w] = tiny_sam_goldens(gdir)
        elif w == "sam-hf":
            rep[w] = export_transformersjs(Path(out_dir), gdir)
        elif w == "sam-onnx":
            rep[w] = export_segment_anything(Path(out_dir), gdir)
    return rep
