"""`cxr-export sam`: Segment Anything style models to two ONNX graphs with one interface for every arch.

  image_encoder.onnx   pixel_values float32 [1,3,S,S] (S=1024 for real models; resized longest side + padded
                       bottom-right, ImageNet mean/std) -> image_embeddings [1,C,S/16,S/16]
                       (+ high_res_feats_0 / high_res_feats_1 for sam2-tiny)
  prompt_decoder.onnx  image_embeddings [+ high-res features], point_coords float32 [1,N,2] (pixels of the S x S
                       frame), point_labels float32 [1,N] (1 fg, 0 bg, -1 padding point, 2/3 box top-left /
                       bottom-right corners), mask_input float32 [1,1,4E,4E], has_mask_input float32 [1]
                       -> masks_low_res [1,M,4E,4E] logits, iou_predictions [1,M]  (E = embedding side; M=3 with
                       multimask output, else 1)
This is the convention of SAM's own ONNX export (segment_anything/utils/onnx.py): with points only, append one
padding point (0,0) labelled -1; a box is two points labelled 2 and 3. SAM2's predictor always appends the
padding point (after a box too): the manifest's config.append_padding_point says which ('when-no-box' | 'always').
Preprocessing mean/std come from the checkpoint's preprocessor_config.json when it has one (else ImageNet's).

Archs: sam-vit-b and medsam (transformers SamModel, same architecture, different weights), sam2-tiny
(transformers Sam2Model, Hiera-tiny), mobilesam (TinyViT encoder + SAM decoder; --checkpoint is the original
MobileSAM weights/mobile_sam.pt state dict, keys mapped by sam_checkpoints.mobilesam_state_dict_to_ours).

This module is the CLI (run, register) and re-exports the parts: sam_adapter.py, sam_models.py, sam_export.py.
"""

from __future__ import annotations

import argparse
import json

from .clip import add_common_args
from .errors import ExportError
from .sam_adapter import SamAdapter, Sam2Adapter
from .sam_models import ARCHS, sam_config, reinit_, build_sam, sam2_config, build_sam2, build_mobilesam
from .sam_export import IMAGENET_MEAN, IMAGENET_STD, sample_inputs, export_sam


def run(args: argparse.Namespace) -> dict:
    if not args.random_init and not args.checkpoint:
        raise ExportError("give --checkpoint DIR or --random-init (no network: hub ids cannot be downloaded here)")
    adapter, info = build_sam(args.arch, None if args.random_init else args.checkpoint, args.size, args.seed)
    if args.single_mask:
        adapter.set_multimask(False) if hasattr(adapter, "set_multimask") else setattr(
            adapter.decoder, "multimask_output", False)
    weights = "random-fixture" if args.random_init else "pretrained"
    source = (f"random-init ({args.size}) {args.arch}" if args.random_init else str(args.checkpoint))
    model_id = args.arch if args.model_id in (None, "", "<arch>") else args.model_id
    entry = export_sam(adapter, info, args.out_dir, model_id, weights, atol=args.atol, rtol=args.rtol,
                       seed=args.seed, source=source)
    print(json.dumps({"id": entry["id"], "parity": entry["config"]["parity"]}))
    return entry


def register(subparsers) -> None:
    p = subparsers.add_parser("sam", help="export SAM / MedSAM / MobileSAM / SAM2 to image_encoder + prompt_decoder ONNX",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "<arch>")
    p.add_argument("--arch", choices=ARCHS, default="sam-vit-b")
    p.add_argument("--checkpoint", default=None, help="transformers model folder (config.json + weights); for "
                   "--arch mobilesam the original mobile_sam.pt file")
    p.add_argument("--rtol", type=float, default=1e-4,
                   help="parity: also allow rtol x max|reference| (deep random decoders give logits of a few units)")
    p.add_argument("--single-mask", action="store_true", help="export the single-mask head (M=1) instead of 3 masks")
    p.set_defaults(func=run)
