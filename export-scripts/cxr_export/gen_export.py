"""Stages `lora-data` and `export` of `cxr-export train-generator`: the captioned PNEUMONIA subset for `cxr-export
lora`, and RUN/base + the LCM-LoRA (+ the domain LoRA) exported by `cxr-export sd` as the app's cxr-ldm-lcm with
its model card (_card: what each stage's summary.json says, plus eval's metrics)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .errors import ExportError
from .gen_data import _setup, list_split
from .gen_models import PNEUMONIA_CAPTION


def stage_lora_data(args) -> dict:
    rows = list_split(args.data, "train", ("PNEUMONIA",))
    rng = np.random.default_rng(args.seed)
    n = min(args.max_images or 512, len(rows))
    pick = sorted(rng.permutation(len(rows))[:n])
    out = Path(args.run_dir) / "lora-data"
    out.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"file_name": str(Path(rows[i][0]).resolve()), "text": PNEUMONIA_CAPTION}) for i in pick]
    (out / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    summary = {"images": n, "caption": PNEUMONIA_CAPTION, "metadata": str(out / "metadata.jsonl")}
    print(json.dumps(summary))
    return summary


def stage_export(args) -> dict:
    from . import manifest as mf
    from .sd import export_sd, prepare

    _setup(args)
    run = Path(args.run_dir)
    lcm = run / "lcm" / "lora"
    lora = run / "lora"
    if not (lcm / "pytorch_lora_weights.safetensors").exists():
        raise ExportError(f"{lcm}: no LCM-LoRA; run `train-generator lcm` first")
    if not (lora / "adapter_config.json").exists():
        raise ExportError(f"{lora}: no domain LoRA; run `cxr-export lora --pretrained {run / 'base'} ...` first")
    dec = run / "vae-decoder" / "model"
    if (dec / "config.json").exists():  # same encoder (checked when it was written), better decoder
        import shutil

        shutil.rmtree(run / "base" / "vae")
        shutil.copytree(dec, run / "base" / "vae")
    parts, unet_lora, lora_info, _ = prepare("full", args.seed, run / "base", lcm, lora, False)
    extra = {}
    if args.unet_layout != "two-graph":  # genapp's `cxr-export sd --unet-layout`: one UNet, runtime lora_scale
        from . import sd

        if not hasattr(sd, "scaled_lora_unet"):
            raise ExportError("--unet-layout scaled needs sd.scaled_lora_unet (cxr-export sd --unet-layout)")
        extra = dict(unet_scaled=sd.scaled_lora_unet(parts["unet"], lora), unet_layout=args.unet_layout)
        if args.unet_layout == "scaled":
            unet_lora = None
    entry = export_sd(parts, args.out_dir, args.model_id, "trained", unet_lora=unet_lora, seed=args.seed,
                      lora_info=lora_info, lcm_source="LCM-LoRA distilled here (train-generator lcm)",
                      write_manifest=False, **extra)
    if entry["config"].get("domain_lora"):  # a path on the training machine means nothing to the app
        entry["config"]["domain_lora"]["path"] = "RUN/lora (train-generator run folder, not shipped)"
    entry.update(_card(run))
    mf.upsert_entry(args.out_dir, entry)
    total = sum(f.stat().st_size for f in (Path(args.out_dir) / args.model_id).iterdir())
    print(json.dumps({"id": entry["id"], "parity": entry["config"]["parity"], "bytes": total}))
    return entry


def _summary(run: Path, stage: str) -> dict:
    p = run / stage / ("train_summary.json" if stage == "lora" else "summary.json")
    return json.loads(p.read_text()) if p.exists() else {}


def _card(run: Path, metrics: dict | None = None) -> dict:
    s = {k: _summary(run, k) for k in ("vae", "vae-decoder", "unet", "lcm", "lora")}
    if "losses" in s["lora"]:
        s["lora"].pop("losses")
    card = {
        "summary": "A small research generator of pediatric chest X-ray-like images (64 px), trained in this "
                   "project on the Kermany train split: AutoencoderKL + UNet2DConditionModel + frozen random-init "
                   "CLIP text encoder (SD 1.x architecture, small widths), LCM-LoRA distilled for 2-8 step "
                   "sampling; unet_lora adds a pneumonia LoRA (cxr-export lora). NOT a medical image source.",
        "limitations": "64x64 px, blurry, pediatric AP views only; the text encoder is random and frozen, so "
                       "prompts other than the training captions mean little. Synthetic images are not for "
                       "clinical use or for training diagnostic models.",
        "training": s,
        "data": "Kermany et al. 2018 (CC BY 4.0), train split only; the test split is the evaluation reference.",
    }
    if metrics:
        card["metrics"] = metrics
    return {"name": "CXR latent diffusion + LCM (trained here, 64 px)", "license": "MIT (weights trained here; "
            "data CC BY 4.0)", "source": "trained by cxr-export train-generator (vae, unet, lcm) + cxr-export lora",
            "card": card}
