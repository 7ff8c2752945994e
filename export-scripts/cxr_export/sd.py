"""`cxr-export sd`: Stable Diffusion 1.5 + LCM-LoRA (4-step generation) to ONNX for the browser.

Graphs (one folder, public/models/<id>/):
  text_encoder.onnx  input_ids int64 [b,77] -> last_hidden_state [b,77,768]   (CLIPTextModel)
  unet.onnx          sample [b,4,h,w], timestep float32 [b], encoder_hidden_states [b,77,768]
                     (+ timestep_cond [b,D] when the UNet has time_cond_proj_dim) -> out_sample [b,4,h,w]
                     base UNet with the LCM-LoRA fused in
  unet_lora.onnx     the same with a domain LoRA (`cxr-export lora`) fused on top (only with --lora)
  unet_scaled.onnx   --unet-layout scaled|both: ONE UNet for both sides: the inputs above + lora_scale float32 [b];
                     the domain LoRA stays low-rank (unfused) and each adapted layer adds lora_scale[i] x its delta,
                     so lora_scale 0 is the base UNet exactly (x + 0·delta) and 1 the LoRA-merged one. The gallery
                     then downloads and holds one UNet instead of two (the LoRA adds only its rank-r matrices).
  vae_decoder.onnx   latent_sample [b,4,h,w] (already divided by scaling_factor) -> sample [b,3,8h,8w] in [-1,1]
  tokenizer.json     CLIP byte-level BPE, padded/truncated to 77 with <|endoftext|>
  scheduler_config.json  diffusers LCMScheduler config (timesteps: see lcm_scheduler.py)
Sources: --pretrained DIR (diffusers layout: unet/ vae/ text_encoder/ tokenizer/ scheduler/) or --random-init
--size tiny|full (SD 1.5 configs written here; full random-init takes the CLIP BPE vocab from ../shared at run time).
LCM-LoRA: --lcm-lora DIR (latent-consistency/lcm-lora-sdv1-5 layout), or with --random-init a random LoRA of the
same shape (same target modules, rank 64 full / 4 tiny).

This module is the CLI (prepare, run, register) and re-exports the parts: sd_tokenizer.py, sd_models.py, sd_lora.py,
sd_export.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import add_common_args
from .tokenizer_builders import FIXTURE_WORDS, clip_bpe_tokenizer, encode_ids, shared_clip_tokenizer_files  # noqa: F401
from .errors import ExportError
from .sd_tokenizer import CONTEXT_LENGTH, SAMPLE_PROMPTS, shared_dir, tiny_bpe_vocab, sd_tokenizer
from .sd_models import LCM_TARGETS, SD15_SCHEDULER, SD_SIZES, build_sd, lcm_scheduler_config
from .sd_lora import (
    add_random_lcm_lora, fuse_and_unload, load_lcm_lora, apply_domain_lora, scaled_lora_unet, random_lora_folder,
)
from .sd_export import wrappers, unet_sample_inputs, export_sd, UNET_LAYOUTS, scaled_unet_wrapper


def prepare(size: str, seed: int, pretrained: Path | None, lcm_lora: Path | None, lora: Path | None,
            random_init: bool):
    """Builds the base SD parts with the LCM-LoRA fused, and (with lora) a second UNet with the domain LoRA too."""
    import copy

    parts = build_sd(size, seed, None if random_init else pretrained)
    unet = parts["unet"]
    if lcm_lora is not None:
        load_lcm_lora(unet, lcm_lora)
        lcm_source = str(lcm_lora)
    elif random_init:
        add_random_lcm_lora(unet, SD_SIZES[size]["lcm_rank"], seed)
        lcm_source = f"random LoRA with the shape of latent-consistency/lcm-lora-sdv1-5 (rank {SD_SIZES[size]['lcm_rank']})"
    else:
        raise ExportError("give --lcm-lora DIR (latent-consistency/lcm-lora-sdv1-5), or --random-init")
    parts["unet"] = fuse_and_unload(unet)
    unet_lora = None
    lora_info = None
    if lora is not None:
        unet_lora = apply_domain_lora(copy.deepcopy(parts["unet"]), lora)
        summary = Path(lora) / "train_summary.json"
        lora_info = {"path": str(lora), **({"summary": json.loads(summary.read_text())} if summary.exists() else {})}
        lora_info.get("summary", {}).pop("losses", None)
    return parts, unet_lora, lora_info, lcm_source


def run(args: argparse.Namespace) -> dict:
    if not args.random_init and not args.pretrained:
        raise ExportError("give --pretrained DIR (diffusers SD 1.5 folder) or --random-init")
    if getattr(args, "random_lora", False):
        if not args.random_init or args.lora is not None:
            raise ExportError("--random-lora goes with --random-init and without --lora")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cxr-random-lora-") as td:
            args.lora = random_lora_folder(build_sd(args.size, args.seed)["unet"], Path(td) / "lora", args.seed)
            args.random_lora = False
            return run(args)
    parts, unet_lora, lora_info, lcm_source = prepare(args.size, args.seed, args.pretrained, args.lcm_lora, args.lora,
                                                      args.random_init)
    weights = "random-fixture" if args.random_init else "pretrained"
    layout = getattr(args, "unet_layout", "two-graph")
    if layout != "two-graph" and args.lora is None:
        raise ExportError(f"--unet-layout {layout} needs --lora DIR (the domain LoRA the runtime scale applies)")
    unet_scaled = scaled_lora_unet(parts["unet"], args.lora) if layout != "two-graph" else None
    entry = export_sd(parts, args.out_dir, args.model_id, weights, unet_lora=unet_lora, atol=args.atol,
                      seed=args.seed, fp16=args.fp16, lora_info=lora_info, lcm_source=lcm_source,
                      unet_scaled=unet_scaled, unet_layout=layout)
    print(json.dumps({"id": entry["id"], "parity": entry["config"]["parity"]}))
    return entry


def register(subparsers) -> None:
    p = subparsers.add_parser("sd", help="export SD 1.5 + LCM-LoRA (+ domain LoRA) to ONNX",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "sd15-lcm")
    p.add_argument("--pretrained", type=Path, default=None, help="diffusers SD 1.5 folder")
    p.add_argument("--lcm-lora", type=Path, default=None, help="LCM-LoRA folder (lcm-lora-sdv1-5)")
    p.add_argument("--lora", type=Path, default=None, help="domain LoRA folder from `cxr-export lora`")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 variant (*_fp16.onnx, fp32 inputs/outputs)")
    p.add_argument("--random-lora", action="store_true",
                   help="with --random-init: a random rank-4 domain LoRA (to_q/k/v/out), e.g. to benchmark the layouts")
    p.add_argument("--unet-layout", choices=UNET_LAYOUTS, default="two-graph",
                   help="two-graph: unet.onnx + unet_lora.onnx; scaled: one unet_scaled.onnx with a lora_scale input "
                        "(0 = base exactly, 1 = LoRA; needs --lora); both: all three")
    p.set_defaults(func=run)
