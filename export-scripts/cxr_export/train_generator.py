"""`cxr-export train-generator STAGE`: the project's own small latent diffusion model of chest X-rays, trained on the
Kermany TRAIN split only (test images are used by `eval` as the reference set, never for training), with the SD 1.x
architecture family and file layout so that `cxr-export lora` and `cxr-export sd` treat it like SD 1.5.

Stages (each resumable from RUN/<stage>/ckpt.pt; each run stops at --max-steps or --time-budget-min, whichever
comes first, and writes its outputs; running the stage again continues from the checkpoint):
  vae        diffusers AutoencoderKL (4 latent channels, 3 blocks = downsampling x4: 64 px -> 16x16 latents) on all
             train images; L1 reconstruction + KL (weight --kl-weight, per pixel); no LPIPS / GAN term (their
             weights cannot be had offline). Writes RUN/vae/model (scaling_factor = 1 / std of the latents, as
             the SD authors chose 0.18215).
  vae-decoder  fine-tunes the decoder only (encoder frozen: the latent space stays the same, like Stability's
             sd-vae-ft-mse), L1 + image-gradient L1; can run while `unet` trains; `export` uses it.
  unet       UNet2DConditionModel (cross-attention on a CLIP text encoder of the SD 1.x architecture, hidden 32,
             FROZEN at its seeded random init; tokenizer: OpenAI CLIP BPE from ../shared, converted to
             tokenizer.json) trained with the epsilon objective on the NORMAL train images, captions from
             NORMAL_CAPTIONS, 10% empty captions (for classifier-free guidance), EMA of the weights.
             Writes RUN/base: a diffusers SD folder (unet/ vae/ text_encoder/ tokenizer/ scheduler/).
  lcm        latent consistency distillation of RUN/base as an LCM-LoRA, the recipe of diffusers'
             examples/consistency_distillation/train_lcm_distill_lora_sd_wds.py: DDIM solver over 50 timesteps
             (skip k = 20), teacher with CFG w ~ U[w_min, w_max], target = the student itself (no EMA target),
             c_skip/c_out boundary scalings (timestep_scaling 10), L2 loss. Data: latents of all train images.
             Writes RUN/lcm/lora/pytorch_lora_weights.safetensors (the lcm-lora-sdv1-5 layout).
  lora-data  RUN/lora-data/metadata.jsonl: a seeded subset of PNEUMONIA train images (absolute paths, nothing
             copied) captioned "a chest X-ray showing pneumonia", for
             `cxr-export lora --pretrained RUN/base --data RUN/lora-data --out RUN/lora`.
  export     `cxr-export sd` (sd.prepare + sd.export_sd) of RUN/base + RUN/lcm/lora (+ RUN/lora) into
             --out-dir/<id> (public/models/cxr-ldm-lcm), then the manifest entry says weights "trained".
  eval       the project's classifier (public/models/pneumonia-vit) over generated images (LCM 2/4/8 steps from
             the exported ONNX graphs, 50-step DDIM of the undistilled PyTorch UNet): fraction called
             PNEUMONIA and Frechet distance on its penultimate embedding against real Kermany test images (floor:
             real train vs real test); the LoRA's loss curve; a grid image. Writes RUN/eval/metrics.json,
             updates the manifest card, writes --grid.

All stages: fixed seeds, torch.set_num_threads(--threads, default 1), os.nice(--nice, default 10).

Code by job: gen_data.py (images, seeds, budget), gen_models.py (sizes, builders, run-folder loaders), gen_loop.py
(the training loop the four training stages share), gen_vae.py, gen_diffusion.py (unet, lcm; LCM math from
lcm_scheduler.py), gen_export.py (lora-data, export, card), gen_eval.py (eval and its metrics); this module is the CLI.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .gen_diffusion import DDIMSolver, save_lcm_lora, stage_lcm, stage_unet
from .gen_eval import Classifier, ddim_sample_torch, frechet_distance, lcm_sample_onnx, stage_eval, write_grid
from .gen_export import stage_export, stage_lora_data
from .gen_models import GEN_SIZES, MODEL_ID, NORMAL_CAPTIONS, PNEUMONIA_CAPTION, load_base, load_vae, runs_default
from .gen_vae import stage_vae, stage_vae_decoder

# names other modules and the tests import from here
__all__ = ["Classifier", "DDIMSolver", "GEN_SIZES", "MODEL_ID", "NORMAL_CAPTIONS", "PNEUMONIA_CAPTION", "STAGES",
           "ddim_sample_torch", "frechet_distance", "lcm_sample_onnx", "load_base", "load_vae", "register", "run",
           "save_lcm_lora", "write_grid"]

STAGES = {"vae": stage_vae, "vae-decoder": stage_vae_decoder, "unet": stage_unet, "lcm": stage_lcm,
          "lora-data": stage_lora_data, "export": stage_export, "eval": stage_eval}


def run(args: argparse.Namespace):
    if args.data is None:
        from .data import shared_dir

        args.data = shared_dir() / "data" / "kermany-cxr-224"
    return STAGES[args.stage](args)


def register(subparsers) -> None:
    from .common import models_dir_default

    p = subparsers.add_parser("train-generator", help="train the project's small latent diffusion generator",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=list(STAGES))
    p.add_argument("--run-dir", type=Path, default=runs_default(), help="checkpoints and stage outputs")
    p.add_argument("--data", type=Path, default=None, help="Kermany-style root with train/ and test/ "
                   "(default ../shared/data/kermany-cxr-224)")
    p.add_argument("--size", choices=list(GEN_SIZES), default="small")
    p.add_argument("--time-budget-min", type=float, default=None, help="stop (and checkpoint) after this wall time")
    p.add_argument("--max-steps", type=int, default=10**9, help="total steps of the stage (across resumes)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-images", type=int, default=None, help="seeded subset of the training images")
    p.add_argument("--kl-weight", type=float, default=1e-5, help="vae: KL weight per pixel")
    p.add_argument("--ema", type=float, default=0.999, help="unet: EMA decay")
    p.add_argument("--lcm-rank", type=int, default=None)
    p.add_argument("--w-min", type=float, default=1.0, help="lcm: CFG w ~ U[w_min, w_max] (guidance = 1 + w)")
    p.add_argument("--w-max", type=float, default=2.0)
    p.add_argument("--num-ddim-timesteps", type=int, default=50)
    p.add_argument("--out-dir", type=Path, default=models_dir_default(), help="models root (export / eval)")
    p.add_argument("--id", dest="model_id", default=MODEL_ID)
    p.add_argument("--classifier-dir", type=Path, default=None, help="eval: models root holding pneumonia-vit "
                   "(default: --out-dir)")
    p.add_argument("--unet-layout", choices=["two-graph", "scaled", "both"], default="two-graph",
                   help="export: unet + unet_lora, or one unet_scaled with a lora_scale input (cxr-export sd)")
    p.add_argument("--n-eval", type=int, default=256, help="eval: generated images per side")
    p.add_argument("--lcm-steps", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--ddim-steps", type=int, default=50, help="eval: DDIM steps of the undistilled UNet (0: skip)")
    p.add_argument("--n-ddim", type=int, default=None, help="eval: DDIM images per side (default --n-eval)")
    p.add_argument("--parts", nargs="+", default=["lcm", "ddim-base", "ddim-lora", "report"],
                   choices=["ref", "lcm", "ddim-base", "ddim-lora", "report"], help="eval: what to compute")
    p.add_argument("--grid", type=Path, default=None, help="eval: write the image grid here")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--nice", type=int, default=10)
    p.add_argument("--log-every", type=int, default=25)
    p.set_defaults(func=run)
