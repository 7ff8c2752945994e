"""Models of `cxr-export sam` (sam.py): the transformers configurations of SAM ViT-B / MedSAM and SAM2 (Hiera-tiny), the
MobileSAM build (timm TinyViT encoder + SAM prompt encoder / mask decoder), random re-initialisation for tiny fixture
models, and build_sam, which returns the adapter for any arch with its preprocessing info."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .clip import seed_all
from .checkpoints import transformers_config
from .errors import ExportError
from .sam_adapter import Sam2Adapter, SamAdapter


ARCHS = ["sam-vit-b", "medsam", "mobilesam", "sam2-tiny"]


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
