"""`cxr-export fixtures`: tiny random models of all four families for the app's tests, plus goldens.

Writes <out-dir>/{tiny-vit-classifier, tiny-biomedclip, tiny-sam, tiny-sd}/ (manifest entries with
weights: 'random-fixture') and <goldens-dir>/<id>/*.json, each
  {"inputs": {name: {"dims": [...], "dtype": "float32"|"int64", "data": [...]}}, "outputs": {...}, "meta": {...}}
computed with ONNX Runtime on the written graphs (meta.torch_max_abs_diff: the same feeds through PyTorch).
Goldens: every graph; tokenizer ids for sample prompts (CLIP WordPiece, SD BPE); the LCM scheduler's 4-step
timesteps and one step on fixed sample/model_output/noise; a full 4-step LCM generation (fixed latents and
per-step noise -> decoded image) with the base and the LoRA-merged UNet. Same --seed gives the same bytes.

This module is the job (write_fixtures, quantized variants, the CLI) and re-exports the parts: fixtures_goldens.py,
fixtures_families.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .clip import models_dir_default, seed_all, torch_threads
from .errors import ExportError
from .fixtures_goldens import tensor, write_golden, graph_golden
from .fixtures_families import (
    IDS, CLIP_PROMPTS, fixture_classifier, fixture_clip, fixture_sam, random_domain_lora, fixture_sd,
    diffusers_goldens,
)


FAMILIES = ["classifier", "clip", "sam", "sd"]
# SAM in the two published ONNX layouts + end-to-end pipeline goldens (cxr_export.sam_layouts)
LAYOUT_FAMILIES = ["sam-goldens", "sam-hf", "sam-onnx"]


def goldens_dir_default() -> Path:
    return Path(__file__).resolve().parents[2] / "tests" / "goldens"


def write_fixtures(out_dir: Path, goldens_dir: Path, seed: int = 0, families: list[str] | None = None,
                   lora_dir: Path | None = None) -> dict:
    import os

    import torch

    torch_threads()
    if "CXR_FIXTURE_THREADS" in os.environ or "CXR_TORCH_THREADS" not in os.environ:
        # tiny models: one thread is faster (no sync overhead) and results do not depend on the thread count
        torch.set_num_threads(int(os.environ.get("CXR_FIXTURE_THREADS", "1")))
    out_dir, goldens_dir = Path(out_dir), Path(goldens_dir)
    report = {}
    for fam in families or FAMILIES:
        t0 = time.time()
        seed_all(seed)
        fn = {"classifier": fixture_classifier, "clip": fixture_clip, "sam": fixture_sam, "sd": fixture_sd}[fam]
        gdir_fam = goldens_dir / IDS[fam]
        if gdir_fam.exists():  # stale goldens of an earlier run must not linger
            for p in gdir_fam.glob("*.json"):
                p.unlink()
        report[fam] = fn(out_dir, goldens_dir, seed, lora_dir) if fam == "sd" else fn(out_dir, goldens_dir, seed)
        for dtype in QUANTIZED.get(fam, ()):
            from .quantize import quantize

            v = quantize(out_dir, IDS[fam], dtype, seed=seed)
            report[fam][f"{dtype}_vs_fp32"] = v["parity"]["max_abs_diff"]
        report[fam]["wall_s"] = round(time.time() - t0, 1)
    return report


# Quantized variants of the fixtures whose families the app can run quantized (parity vs fp32 in the manifest).
QUANTIZED = {"classifier": ("int8", "fp16"), "clip": ("int8", "fp16")}


def fixture_bytes(out_dir: Path, goldens_dir: Path) -> int:
    total = 0
    for mid in IDS.values():
        for root in (Path(out_dir) / mid, Path(goldens_dir) / mid):
            if root.exists():
                total += sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    return total


def run(args: argparse.Namespace) -> dict:
    fams = args.only or FAMILIES + LAYOUT_FAMILIES
    bad = [f for f in fams if f not in FAMILIES + LAYOUT_FAMILIES]
    if bad:
        raise ExportError(f"unknown family {bad}; choose from {FAMILIES + LAYOUT_FAMILIES}")
    t0 = time.time()
    core = [f for f in fams if f in FAMILIES]
    report = write_fixtures(args.out_dir, args.goldens_dir, args.seed, core, args.lora) if core else {}
    layouts = [f for f in fams if f in LAYOUT_FAMILIES]
    if layouts:
        from .sam_layouts import write_layout_fixtures

        # after 'sam' (tiny-sam's pipeline goldens check the graph on disk)
        report.update(write_layout_fixtures(args.out_dir, args.segment_goldens_dir, layouts))
    report["total_bytes"] = fixture_bytes(args.out_dir, args.goldens_dir)
    report["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=1))
    return report


def register(subparsers) -> None:
    p = subparsers.add_parser("fixtures", help="write tiny random models of every family + goldens for the app's tests",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out-dir", type=Path, default=models_dir_default(), help="models root (default public/models)")
    p.add_argument("--goldens-dir", type=Path, default=goldens_dir_default(), help="default tests/goldens")
    p.add_argument("--segment-goldens-dir", type=Path, default=Path(__file__).resolve().parents[2] / "tests" /
                   "segment-goldens", help="end-to-end SAM pipeline goldens (default tests/segment-goldens)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", metavar="FAMILY", help=f"subset of {FAMILIES + LAYOUT_FAMILIES}")
    p.add_argument("--lora", type=Path, default=None,
                   help="domain LoRA folder for tiny-sd's unet_lora (default: a random one, so no data is needed)")
    p.set_defaults(func=run)
