"""The segment-anything layout of the SAM goldens (sam_layouts.py): a tiny model of Meta's segment_anything package, its
SamOnnxModel decoder exported as that package's ONNX export does, and SamPredictor goldens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import manifest as mf
from .clip import atomic_dir, export_onnx, run_onnx, seed_all
from .errors import ExportError
from .sam_layouts_cases import BOX, BOX_POINT, POINTS, _case_doc, _write, synthetic_image


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
