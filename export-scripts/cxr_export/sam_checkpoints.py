"""Original (non-transformers) SAM-family checkpoints -> the modules sam.py builds.

MobileSAM (github.com/ChaoningZhang/MobileSAM, weights/mobile_sam.pt) is a plain state dict of its `Sam` module in
the segment-anything layout:
  image_encoder.*   MobileSAM's tiny_vit_sam.TinyViT (Microsoft TinyViT names: patch_embed.seq.{0,2}.{c,bn},
                    layers.{i}.blocks.{j}.*, layers.{i}.downsample.*, norm_head, head, neck.{0..3})
  prompt_encoder.*  segment_anything PromptEncoder (pe_layer, point_embeddings, mask_downscaling, ...)
  mask_decoder.*    segment_anything MaskDecoder (TwoWayTransformer, output_upscaling, MLP.layers.{0,1,2}, ...)
Ours (see sam.build_mobilesam) is `image_encoder.trunk.*` = timm TinyVit, `image_encoder.neck.{0..3}` = the same
Sequential as the original neck, and the rest = a transformers SamModel (prompt_encoder / mask_decoder /
shared_image_embedding) whose key names follow transformers' convert_sam_to_hf.py.
"""

from __future__ import annotations

import re

from .errors import ExportError

# original keys that have no counterpart in ours (not used by MobileSAM's forward, or derived / non-persistent)
_DROP = [
    re.compile(r"^image_encoder\.head\.(weight|bias)$"),  # TinyViT's 1000-class classifier: unused by MobileSAM
    re.compile(r"attention_bias_idxs$"),  # index buffer, rebuilt by the module (non-persistent in newer code)
    re.compile(r"^pixel_(mean|std)$"),  # normalisation constants (ImageNet's; the manifest carries them)
]

# ours keys that may be absent from a checkpoint without harm: kept at the module's own value
OPTIONAL_OURS = [
    re.compile(r"num_batches_tracked$"),  # BatchNorm bookkeeping, unused in eval
    re.compile(r"^image_encoder\.trunk\.head\.norm\.(weight|bias)$"),  # classifier-head norm, unused by MobileSAM
]

_MLP3 = {"0": "proj_in", "1": "layers.0", "2": "proj_out"}  # segment-anything MLP(depth 3) -> transformers SamFeedForward


def _tinyvit_key(k: str) -> str:
    """MobileSAM tiny_vit_sam.TinyViT key (without 'image_encoder.') -> timm TinyVit key (under 'trunk.') or neck."""
    if k.startswith("neck."):
        return k  # same nn.Sequential(conv, LayerNorm2d, conv, LayerNorm2d) indices and parameter names
    if k.startswith("norm_head."):
        return "trunk.head.norm." + k[len("norm_head."):]
    # Conv2d_BN is a Sequential of ('c', Conv2d), ('bn', BatchNorm2d); timm's ConvNorm has .conv / .bn
    k = re.sub(r"\.c\.(weight|bias)$", r".conv.\1", k)
    m = re.match(r"^patch_embed\.seq\.(\d)\.(.*)$", k)
    if m:  # seq = [Conv2d_BN, act, Conv2d_BN]
        idx = {"0": "conv1", "2": "conv2"}.get(m.group(1))
        if idx is None:
            raise ExportError(f"mobile_sam checkpoint: unexpected patch_embed key image_encoder.{k}")
        return f"trunk.patch_embed.{idx}.{m.group(2)}"
    m = re.match(r"^layers\.(\d+)\.downsample\.(.*)$", k)
    if m:  # original: PatchMerging at the END of layer i; timm: at the START of stage i+1
        return f"trunk.stages.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
    m = re.match(r"^layers\.(\d+)\.blocks\.(.*)$", k)
    if m:  # MBConv (conv1..3) / TinyViTBlock (attn.{norm,qkv,proj,attention_biases}, mlp.{norm,fc1,fc2}, local_conv)
        return f"trunk.stages.{m.group(1)}.blocks.{m.group(2)}"
    raise ExportError(f"mobile_sam checkpoint: unexpected image encoder key image_encoder.{k}")


def _prompt_encoder_key(k: str) -> list[str]:
    if k == "pe_layer.positional_encoding_gaussian_matrix":  # one matrix, shared by prompts and the image-wide PE
        return ["prompt_encoder.shared_embedding.positional_embedding", "shared_image_embedding.positional_embedding"]
    m = re.match(r"^point_embeddings\.(\d+)\.(.*)$", k)
    if m:
        return [f"prompt_encoder.point_embed.{m.group(1)}.{m.group(2)}"]
    m = re.match(r"^mask_downscaling\.(\d+)\.(.*)$", k)
    if m:  # Sequential(conv, LN2d, GELU, conv, LN2d, GELU, conv)
        name = {"0": "conv1", "1": "layer_norm1", "3": "conv2", "4": "layer_norm2", "6": "conv3"}.get(m.group(1))
        if name is None:
            raise ExportError(f"mobile_sam checkpoint: unexpected key prompt_encoder.{k}")
        return [f"prompt_encoder.mask_embed.{name}.{m.group(2)}"]
    return ["prompt_encoder." + k]  # not_a_point_embed, no_mask_embed


def _mask_decoder_key(k: str) -> str:
    m = re.match(r"^output_upscaling\.(\d+)\.(.*)$", k)
    if m:  # Sequential(ConvT, LN2d, GELU, ConvT, GELU)
        name = {"0": "upscale_conv1", "1": "upscale_layer_norm", "3": "upscale_conv2"}.get(m.group(1))
        if name is None:
            raise ExportError(f"mobile_sam checkpoint: unexpected key mask_decoder.{k}")
        return f"mask_decoder.{name}.{m.group(2)}"
    m = re.match(r"^(output_hypernetworks_mlps\.\d+|iou_prediction_head)\.layers\.(\d+)\.(.*)$", k)
    if m:
        if m.group(2) not in _MLP3:
            raise ExportError(f"mobile_sam checkpoint: unexpected key mask_decoder.{k} (expected 3-layer MLPs)")
        return f"mask_decoder.{m.group(1)}.{_MLP3[m.group(2)]}.{m.group(3)}"
    if k.startswith("transformer."):  # TwoWayTransformer: norm1..4 / norm_final_attn -> layer_norm*; rest unchanged
        k = re.sub(r"\.norm(\d|_final_attn)\.", r".layer_norm\1.", k)
    return "mask_decoder." + k  # iou_token, mask_tokens, transformer.*


def mobilesam_state_dict_to_ours(sd: dict) -> dict:
    """Original mobile_sam.pt keys -> ours (`image_encoder.{trunk,neck}.*` + transformers SamModel keys), same
    tensors. Keys that ours has no use for (classifier head, pixel mean/std, attention_bias_idxs) are dropped;
    an unknown top-level prefix is an ExportError."""
    out = {}
    for k, v in sd.items():
        if any(p.search(k) for p in _DROP):
            continue
        top, _, rest = k.partition(".")
        if top == "image_encoder":
            new = ["image_encoder." + _tinyvit_key(rest)]
        elif top == "prompt_encoder":
            new = _prompt_encoder_key(rest)
        elif top == "mask_decoder":
            new = [_mask_decoder_key(rest)]
        else:
            raise ExportError(f"mobile_sam checkpoint: unexpected key {k!r} (expected image_encoder.* / "
                              "prompt_encoder.* / mask_decoder.*)")
        for n in new:
            if n in out:
                raise ExportError(f"mobile_sam checkpoint: two keys map to {n!r} (last: {k!r})")
            out[n] = v
    return out


def read_state_dict(path: str) -> dict:
    """torch.load a raw state dict (also accepts {'model': sd} / {'state_dict': sd} wrappers)."""
    from pathlib import Path

    import torch

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"--checkpoint {path}: not a file (mobilesam expects the original state dict, "
                          "e.g. MobileSAM's weights/mobile_sam.pt)")
    try:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ExportError(f"--checkpoint {path}: could not read it as a torch state dict (mobile_sam.pt): "
                          f"{exc}") from exc
    for wrap in ("model", "state_dict"):
        if isinstance(sd, dict) and isinstance(sd.get(wrap), dict):
            sd = sd[wrap]
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ExportError(f"--checkpoint {path}: not a state dict of tensors (mobile_sam.pt)")
    return sd


def load_mobilesam_(encoder, model, sd: dict, source: str = "mobile_sam.pt") -> None:
    """Map an original MobileSAM state dict and load it strictly into (MobileSamEncoder, SamModel): every key of
    ours must be provided (bar OPTIONAL_OURS) and every mapped key used, shapes equal; else an ExportError that
    lists the missing / unexpected / mismatched keys."""
    import torch

    mapped = mobilesam_state_dict_to_ours(sd)
    ours = {"image_encoder." + k: v for k, v in encoder.state_dict().items()}
    ours.update(model.state_dict())
    missing = sorted(k for k in ours if k not in mapped and not any(p.search(k) for p in OPTIONAL_OURS))
    unexpected = sorted(k for k in mapped if k not in ours)
    mismatched = sorted(f"{k}: checkpoint {tuple(mapped[k].shape)} vs ours {tuple(ours[k].shape)}"
                        for k in mapped if k in ours and tuple(mapped[k].shape) != tuple(ours[k].shape))

    def _fmt(keys):
        return ", ".join(keys[:12]) + (f" ... (+{len(keys) - 12} more)" if len(keys) > 12 else "")

    if missing or unexpected or mismatched:
        parts = [f"{len(missing)} missing: {_fmt(missing)}" if missing else "",
                 f"{len(unexpected)} unexpected: {_fmt(unexpected)}" if unexpected else "",
                 f"{len(mismatched)} shape mismatches: {_fmt(mismatched)}" if mismatched else ""]
        raise ExportError(f"--checkpoint {source}: does not match MobileSAM (TinyViT-5M + SAM decoder) after key "
                          f"mapping; " + "; ".join(p for p in parts if p))
    full = {k: mapped.get(k, v) for k, v in ours.items()}  # optional keys keep the module's own value
    enc_sd = {k[len("image_encoder."):]: v for k, v in full.items() if k.startswith("image_encoder.")}
    sam_sd = {k: v for k, v in full.items() if not k.startswith("image_encoder.")}
    try:
        with torch.no_grad():
            encoder.load_state_dict(enc_sd, strict=True)
            model.load_state_dict(sam_sd, strict=True)
    except RuntimeError as exc:
        raise ExportError(f"--checkpoint {source}: could not load into MobileSAM: {exc}") from exc
