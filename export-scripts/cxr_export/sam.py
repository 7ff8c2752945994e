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
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .clip import (add_common_args, atomic_dir, check_parity, export_onnx, run_onnx, seed_all, torch_threads,
                   write_json)
from .checkpoints import transformers_config
from .errors import ExportError

ARCHS = ["sam-vit-b", "medsam", "mobilesam", "sam2-tiny"]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sam_config(size: str):
    from transformers import SamConfig

    if size == "full":  # transformers' SamConfig defaults are facebook/sam-vit-base (MedSAM shares it)
        return SamConfig()
    return SamConfig(
        vision_config=dict(hidden_size=32, output_channels=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=64, patch_size=8, mlp_dim=64, window_size=4, global_attn_indexes=[1],
                           num_pos_feats=16),
        prompt_encoder_config=dict(hidden_size=32, image_size=64, patch_size=8, mask_input_channels=8),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
    )


def reinit_(module, gain: float = 1.0, seed: int = 0) -> None:
    """Random weights with a visible signal: SamModel's default init (initializer_range 1e-10 in the vision tower)
    gives near-zero encoder outputs and masks, which would make parity checks vacuous. Matrices/convs ~
    N(0, gain/sqrt(fan_in)) (unit-scale activations at any width: 0.036 for ViT-B), biases and embeddings ~
    N(0, 0.02), norm weights ~ 1 + N(0, 0.02); the positional Gaussian matrix keeps its own init."""
    import torch

    g = torch.Generator().manual_seed(seed)
    norm_types = (torch.nn.LayerNorm, torch.nn.GroupNorm, torch.nn.modules.batchnorm._BatchNorm)
    norm_weights = {id(m.weight) for m in module.modules() if isinstance(m, norm_types) and m.weight is not None}
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "positional_embedding" in name and "shared" in name:
                continue
            if id(p) in norm_weights:
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.02)
            elif p.dim() >= 2 and p.shape[0] > 1:
                fan_in = int(np.prod(p.shape[1:]))
                if "upscale_conv" in name:  # ConvTranspose2d weights are [in, out, k, k]
                    fan_in = p.shape[0]
                p.copy_(torch.randn(p.shape, generator=g) * gain / max(1, fan_in) ** 0.5)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)


def build_sam(arch: str, checkpoint: str | None, size: str, seed: int):
    """Returns (adapter, info). adapter exposes .encoder (nn.Module: pixel_values -> tuple of features) and
    .decoder (nn.Module with the prompt_decoder.onnx signature)."""
    import torch

    seed_all(seed)
    if arch in ("sam-vit-b", "medsam"):
        from transformers import SamModel

        if checkpoint:
            p = transformers_config(checkpoint, ("sam",))[0]
            try:
                model = SamModel.from_pretrained(p, attn_implementation="eager")
            except Exception as exc:
                raise ExportError(f"--checkpoint {checkpoint}: could not load SamModel: {exc}") from exc
        else:
            model = SamModel(sam_config(size))
            reinit_(model, seed=seed)
        model.eval()
        info = _info_from_sam(model.config, arch)
        if checkpoint:
            info.update(_checkpoint_norm(Path(checkpoint)))
        return SamAdapter(model), info
    if arch == "sam2-tiny":
        return build_sam2(checkpoint, size, seed)
    if arch == "mobilesam":
        return build_mobilesam(checkpoint, size, seed)
    raise ExportError(f"unknown --arch {arch!r}; one of {', '.join(ARCHS)}")


def _checkpoint_norm(p: Path) -> dict:
    pre = p / "preprocessor_config.json"
    if not pre.exists():
        return {}
    data = json.loads(pre.read_text())
    out = {}
    if data.get("image_mean") and data.get("image_std"):
        out = {"mean": [float(v) for v in data["image_mean"]], "std": [float(v) for v in data["image_std"]]}
    if data.get("do_normalize") is False:
        out = {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    return out


def _info_from_sam(cfg, arch: str) -> dict:
    s = int(cfg.vision_config.image_size)
    e = int(cfg.prompt_encoder_config.image_embedding_size)
    return dict(arch=arch, image_size=s, embedding_size=e, embedding_dim=int(cfg.vision_config.output_channels),
                mask_size=4 * e, extra_features=[])


def _embed_points_sam(pe_fn, point_embed, not_a_point_embed, coords, labels, image_size: int):
    """SAM ONNX convention: pe(coords+0.5) except for -1 (not-a-point), plus point_embed[i] for label i in 0..3."""
    import torch

    coords = coords + 0.5
    pe = pe_fn(coords / image_size)  # [1,N,C]
    lab = labels.unsqueeze(-1)
    emb = pe * (lab != -1).to(pe.dtype) + not_a_point_embed * (lab == -1).to(pe.dtype)
    for i, w in enumerate(point_embed):
        emb = emb + w * (lab == i).to(pe.dtype)
    return emb


def _make_decoder(model, multimask: bool, n_high_res: int):
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.sam = model
            self.multimask_output = multimask

        def forward(self, *inputs):
            feats = inputs[: n_high_res + 1]
            point_coords, point_labels, mask_input, has_mask_input = inputs[n_high_res + 1:]
            image_embeddings = feats[-1]
            pr = self.sam.prompt_encoder
            pe_layer = pr.shared_embedding
            pe = lambda c01: pe_layer(c01.unsqueeze(1)).squeeze(1)  # noqa: E731  coords already in [0,1]
            pw = pr.point_embed
            point_weights = [w.weight for w in pw] if isinstance(pw, torch.nn.ModuleList) else \
                [pw.weight[i:i + 1] for i in range(pw.weight.shape[0])]
            sparse = _embed_points_sam(pe, point_weights, pr.not_a_point_embed.weight, point_coords, point_labels,
                                       pr.input_image_size)
            has = has_mask_input.reshape(-1, 1, 1, 1)
            dense = has * pr.mask_embed(mask_input) + (1 - has) * pr.no_mask_embed.weight.reshape(1, -1, 1, 1)
            kwargs = dict(image_embeddings=image_embeddings,
                          image_positional_embeddings=self.sam.get_image_wide_positional_embeddings(),
                          sparse_prompt_embeddings=sparse.unsqueeze(1), dense_prompt_embeddings=dense,
                          multimask_output=self.multimask_output)
            if n_high_res:
                kwargs["high_resolution_features"] = list(feats[:-1])
            out = self.sam.mask_decoder(**kwargs)
            return out[0][:, 0], out[1][:, 0]

    return Decoder().eval()


class SamAdapter:
    """transformers SamModel (sam-vit-b, medsam; MobileSAM with its vision encoder swapped) -> encoder/decoder."""

    n_high_res = 0
    feature_names = ["image_embeddings"]
    padding_point = "when-no-box"

    def __init__(self, model, multimask: bool = True, encoder=None):
        import torch

        self.model = model

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.vision_encoder = encoder if encoder is not None else model.vision_encoder

            def forward(self, pixel_values):
                return self.vision_encoder(pixel_values)[0]

        self.encoder = Encoder().eval()
        self.decoder = _make_decoder(model, multimask, self.n_high_res)

    def set_multimask(self, on: bool) -> None:
        self.decoder.multimask_output = on

    def reference(self, feats, points=None, labels=None, boxes=None, multimask=True):
        """transformers' own forward on the encoder's features, for checking the adapter's prompt semantics."""
        import torch

        with torch.no_grad():
            out = self.model(image_embeddings=feats[-1], input_points=points, input_labels=labels, input_boxes=boxes,
                             multimask_output=multimask)
        return out.pred_masks[:, 0], out.iou_scores[:, 0]


class Sam2Adapter(SamAdapter):
    """transformers Sam2Model (Hiera) -> encoder (3 feature maps) / decoder. SAM2 always appends the padding point
    (also after a box), as its own predictor does."""

    n_high_res = 2
    feature_names = ["high_res_feats_0", "high_res_feats_1", "image_embeddings"]
    padding_point = "always"

    def __init__(self, model, multimask: bool = True):
        import torch

        self.model = model

        class Encoder(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.sam = model

            def forward(self, pixel_values):
                return tuple(self.sam.get_image_embeddings(pixel_values))

        self.encoder = Encoder().eval()
        self.decoder = _make_decoder(model, multimask, self.n_high_res)

    def reference(self, feats, points=None, labels=None, boxes=None, multimask=True):
        import torch

        with torch.no_grad():
            out = self.model(image_embeddings=list(feats), input_points=points, input_labels=labels,
                             input_boxes=boxes, multimask_output=multimask)
        return out.pred_masks[:, 0], out.iou_scores[:, 0]


# ----------------------------------------------------------------------------------------------------------------
# SAM2 (transformers Sam2Model) and MobileSAM (timm TinyViT + SAM prompt encoder / mask decoder)
# ----------------------------------------------------------------------------------------------------------------


def sam2_config(size: str):
    from transformers import Sam2Config

    if size == "full":  # transformers' Sam2Config defaults are sam2.1-hiera-tiny
        return Sam2Config()
    return Sam2Config(
        vision_config=dict(
            backbone_config=dict(model_type="sam2_hiera_det_model", hidden_size=16, image_size=[128, 128],
                                 embed_dim_per_stage=[16, 32, 48, 64], blocks_per_stage=[1, 1, 2, 1],
                                 num_attention_heads_per_stage=[1, 1, 2, 2], window_size_per_stage=[4, 4, 4, 4],
                                 global_attention_blocks=[3], window_positional_embedding_background_size=[4, 4]),
            backbone_channel_list=[64, 48, 32, 16], backbone_feature_sizes=[[32, 32], [16, 16], [8, 8]],
            fpn_hidden_size=32),
        prompt_encoder_config=dict(hidden_size=32, image_size=128, patch_size=16, mask_input_channels=8),
        mask_decoder_config=dict(hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=2,
                                 iou_head_hidden_dim=32),
    )


def build_sam2(checkpoint, size, seed):
    from transformers import Sam2Model

    if checkpoint:
        p = transformers_config(checkpoint, ("sam2",))[0]
        try:
            model = Sam2Model.from_pretrained(p, attn_implementation="eager")
        except Exception as exc:
            raise ExportError(f"--checkpoint {checkpoint}: could not load Sam2Model: {exc}") from exc
    else:
        model = Sam2Model(sam2_config(size))
        reinit_(model, seed=seed)
    model.eval()
    cfg = model.config
    s = int(cfg.prompt_encoder_config.image_size)
    e = s // int(cfg.prompt_encoder_config.patch_size)
    info = dict(arch="sam2-tiny", image_size=s, embedding_size=e, embedding_dim=int(cfg.vision_config.fpn_hidden_size),
                mask_size=4 * e, extra_features=["high_res_feats_0", "high_res_feats_1"])
    return Sam2Adapter(model), info


def build_mobilesam(checkpoint, size, seed):
    """MobileSAM = TinyViT-5M image encoder (last PatchMerging with stride 1, so 1024 px -> 64x64 like SAM) + neck
    (1x1 conv, LayerNorm2d, 3x3 conv, LayerNorm2d -> 256 ch) + SAM's prompt encoder and mask decoder."""
    import torch
    from timm.models.tiny_vit import TinyVit
    from transformers import SamModel
    from transformers.models.sam.modeling_sam import SamLayerNorm

    sd = None
    if checkpoint:  # the official weights/mobile_sam.pt (segment-anything layout); its architecture is the full one
        from .sam_checkpoints import read_state_dict

        sd = read_state_dict(checkpoint)
        size = "full"
    if size == "full":
        tv = dict(embed_dims=(64, 128, 160, 320), depths=(2, 2, 6, 2), num_heads=(2, 4, 5, 10),
                  window_sizes=(7, 7, 14, 7))
        cfg = sam_config("full")
        out_ch = 256
    else:
        tv = dict(embed_dims=(16, 32, 48, 64), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_sizes=(4, 4, 4, 4))
        cfg = sam_config("tiny")
        cfg.vision_config.image_size = 128
        cfg.vision_config.patch_size = 16
        cfg.prompt_encoder_config.image_size = 128
        cfg.prompt_encoder_config.patch_size = 16
        cfg.prompt_encoder_config.image_embedding_size = 8
        out_ch = 32
    # the SamModel's own ViT is replaced; build it minimal
    cfg.vision_config.num_hidden_layers = 1
    cfg.vision_config.global_attn_indexes = [0]
    seed_all(seed)

    class MobileSamEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.trunk = TinyVit(num_classes=0, global_pool="", drop_path_rate=0.0, **tv)
            self.trunk.stages[3].downsample.conv2.conv.stride = (1, 1)  # MobileSAM: stride 1 into the last stage
            c = tv["embed_dims"][-1]
            self.neck = torch.nn.Sequential(
                torch.nn.Conv2d(c, out_ch, 1, bias=False), SamLayerNorm(out_ch, data_format="channels_first"),
                torch.nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False),
                SamLayerNorm(out_ch, data_format="channels_first"))

        def forward(self, pixel_values):
            return (self.neck(self.trunk.forward_features(pixel_values)),)

    model = SamModel(cfg)
    encoder = MobileSamEncoder()
    model.vision_encoder = torch.nn.Identity()  # not used: the adapter runs MobileSamEncoder
    if sd is not None:
        from .sam_checkpoints import load_mobilesam_

        load_mobilesam_(encoder, model, sd, source=str(checkpoint))
    else:
        reinit_(model, seed=seed)
        reinit_(encoder, seed=seed + 1)
    model.eval()
    encoder.eval()
    info = _info_from_sam(cfg, "mobilesam")
    info["embedding_dim"] = out_ch
    return SamAdapter(model, encoder=encoder), info


# ----------------------------------------------------------------------------------------------------------------
# Export
# ----------------------------------------------------------------------------------------------------------------


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
