"""LoRA adapters of the `cxr-export sd` pipeline (sd.py): loading the published LCM-LoRA or a random one of its shape,
the domain LoRA (diffusers / peft format), fusing adapters into the UNet, the UNet with a runtime LoRA scale, and a
random LoRA folder for fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ExportError
from .sd_models import LCM_TARGETS


def add_random_lcm_lora(unet, rank: int, seed: int, std: float = 0.02):
    """A random LoRA with the LCM-LoRA's shape (targets, rank) fused into the UNet (in place); returns the UNet."""
    import torch
    from peft import LoraConfig

    cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=LCM_TARGETS, init_lora_weights="gaussian")
    unet.add_adapter(cfg, adapter_name="lcm")
    g = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:  # zero-initialised by peft: give the adapter a visible effect
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return unet


def fuse_and_unload(unet):
    """Merge every active LoRA into the base weights and remove the LoRA layers (diffusers fuse_lora + unload)."""
    unet.fuse_lora()
    unet.unload_lora()
    return unet


def load_lcm_lora(unet, path: Path):
    p = Path(path)
    if not p.exists():
        raise ExportError(f"--lcm-lora {p}: no such file or folder")
    _load_diffusers_lora(unet, p, "lcm", "--lcm-lora")
    return unet


def _load_diffusers_lora(unet, path: Path, adapter_name: str, flag: str) -> None:
    """A diffusers / kohya LoRA file or folder (pytorch_lora_weights.safetensors, as published for lcm-lora-sdv1-5)
    into the UNet as an unfused adapter; key formats are converted by diffusers' SD LoRA loader."""
    from diffusers.loaders.lora_pipeline import StableDiffusionLoraLoaderMixin

    try:
        state, alphas = StableDiffusionLoraLoaderMixin.lora_state_dict(str(path))
        unet_state = {k: v for k, v in state.items() if k.startswith("unet.")}
        if not unet_state:
            raise ValueError("no UNet LoRA weights in it")
        unet.load_lora_adapter(unet_state, network_alphas=alphas, prefix="unet", adapter_name=adapter_name)
    except Exception as exc:
        raise ExportError(f"{flag} {path}: could not load the LoRA into this UNet: {exc}") from exc


def apply_domain_lora(unet, path: Path):
    """Returns the UNet with the domain LoRA (peft save_pretrained folder from `cxr-export lora`, or a diffusers
    pytorch_lora_weights.safetensors folder) fused in."""
    p = Path(path)
    if (p / "adapter_config.json").exists():
        from peft import PeftModel

        try:
            pm = PeftModel.from_pretrained(unet, str(p))
        except Exception as exc:
            raise ExportError(f"--lora {p}: adapter does not fit this UNet: {exc}") from exc
        return pm.merge_and_unload()
    if p.exists():
        _load_diffusers_lora(unet, p, "domain", "--lora")
        return fuse_and_unload(unet)
    raise ExportError(f"--lora {p}: no such folder")


def scaled_lora_unet(unet, lora: Path):
    """A copy of `unet` with the domain LoRA loaded UNFUSED and a runtime scale: returns (unet_copy, set_scale) where
    set_scale(t) (t float32 [batch]) makes every LoRA layer output base(x) + t[i] * scaling * B(A(x)) for sample i.
    Works on the peft LoraLayer modules that both adapter formats load into (peft folder, diffusers safetensors)."""
    import copy

    import torch

    p = Path(lora)
    u = copy.deepcopy(unet)
    if (p / "adapter_config.json").exists():
        from peft import PeftModel

        try:
            u = PeftModel.from_pretrained(u, str(p)).base_model.model
        except Exception as exc:
            raise ExportError(f"--lora {p}: adapter does not fit this UNet: {exc}") from exc
    elif p.exists():
        _load_diffusers_lora(u, p, "domain", "--lora")
    else:
        raise ExportError(f"--lora {p}: no such folder")
    from peft.tuners.lora import LoraLayer

    layers = [m for m in u.modules() if isinstance(m, LoraLayer)]
    if not layers:
        raise ExportError(f"--lora {p}: no LoRA layer was created in the UNet")
    base_scaling = [dict(m.scaling) for m in layers]
    state: dict[str, Any] = {"scale": None}

    def pre_hook(i):
        def hook(module, args):
            x = args[0]
            t = state["scale"].reshape([-1] + [1] * (x.dim() - 1))  # per sample, broadcast over the layer's output
            for k, v in base_scaling[i].items():
                module.scaling[k] = t * v
        return hook

    for i, m in enumerate(layers):
        m.register_forward_pre_hook(pre_hook(i))

    def set_scale(t):
        state["scale"] = t.to(torch.float32)

    u.eval()
    u.requires_grad_(False)
    return u, set_scale


def random_lora_folder(unet, path: Path, seed: int, rank: int = 4, std: float = 0.05) -> Path:
    """A random peft adapter folder (the format `cxr-export lora` writes; targets = lora.LORA_TARGETS, written out here
    because lora.py imports this module) for `--random-init --random-lora`: benchmarks of the scaled layout at full size
    without training a LoRA first."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(copy.deepcopy(unet), LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                                        target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    gen = torch.Generator().manual_seed(seed + 4242)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    pm.save_pretrained(str(path))
    return Path(path)
