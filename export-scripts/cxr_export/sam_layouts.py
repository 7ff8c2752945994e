"""Tiny random SAM fixtures in the two ONNX layouts people publish, and end-to-end PyTorch goldens for the app.

Layouts (the app's lib/sam/layouts.ts detects them from the graphs' input/output names):

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

This module writes both layouts (write_layout_fixtures) and re-exports the parts: sam_layouts_cases.py,
sam_layouts_hf.py, sam_layouts_segment_anything.py.
"""

from __future__ import annotations

from pathlib import Path

from .sam_layouts_cases import IMAGE_W, IMAGE_H, synthetic_image, write_png, POINTS, BOX, BOX_POINT
from .sam_layouts_hf import hf_processor, hf_pipeline, tiny_sam_goldens, export_transformersjs
from .sam_layouts_segment_anything import tiny_segment_anything, export_segment_anything


def segment_goldens_dir_default() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "segment-goldens"


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
