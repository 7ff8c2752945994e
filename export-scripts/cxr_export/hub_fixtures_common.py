"""Shared parts of `cxr-export hub-fixtures` (hub_fixtures.py): the fixture org, the graph export with its dtype
variants and parity checks, config / processor / tokenizer writers as transformers writes them, the golden writer
and the synthetic images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import export_onnx, run_onnx
from .errors import ExportError
from .fixtures_goldens import tensor

ORG = "cxr-fixtures"
ATOL = 1e-4
GOLDENS = "_goldens"
DTYPE_SUFFIXES = {"fp32": "", "q8": "_quantized", "fp16": "_fp16"}


def synthetic_rgb(w: int, h: int) -> np.ndarray:
    """Deterministic RGB uint8 [h, w, 3]: two dark 'lungs' on a gradient (cxr_export.sam_layouts_cases)."""
    from .sam_layouts_cases import synthetic_image

    return synthetic_image(w, h)


def write_image(gdir: Path, w: int, h: int) -> tuple[str, np.ndarray]:
    from .sam_layouts_cases import write_png

    rgb = synthetic_rgb(w, h)
    name = f"image-{w}x{h}.png"
    write_png(gdir / name, rgb)
    return name, rgb


def export_graph(module, args: tuple, onnx_dir: Path, stem: str, inputs: list[str], outputs: list[str],
                 dynamic_axes: dict, torch_out: dict[str, np.ndarray], feeds: dict[str, np.ndarray]) -> dict:
    """Exports onnx/<stem>.onnx, checks it against torch_out (max abs diff <= ATOL, else ExportError), then writes
    <stem>_quantized.onnx and <stem>_fp16.onnx and measures each against the fp32 graph on the same feeds.
    Returns {"fp32_vs_torch": d, "q8_vs_fp32": d, "fp16_vs_fp32": d}."""
    from .parity import max_abs_diff
    from .quantize import quantize_file

    path = onnx_dir / f"{stem}.onnx"
    export_onnx(module, args, path, inputs, outputs, dynamic_axes)
    got = run_onnx(path, feeds)
    diff = max(max_abs_diff(np.asarray(ref), got[k]) for k, ref in torch_out.items())
    if not diff <= ATOL:
        raise ExportError(f"hub fixture {onnx_dir.parent.name}/{stem}: ONNX vs PyTorch {diff:.3g} > {ATOL}")
    rep = {"fp32_vs_torch": float(f"{diff:.3g}")}
    for dtype, sfx in (("q8", "_quantized"), ("fp16", "_fp16")):
        dst = onnx_dir / f"{stem}{sfx}.onnx"
        quantize_file(path, dst, "int8" if dtype == "q8" else "fp16")
        out = run_onnx(dst, feeds)
        rep[f"{dtype}_vs_fp32"] = float(f"{max(max_abs_diff(got[k], out[k]) for k in got):.3g}")
    return rep


def save_config(model, repo: Path) -> None:
    """config.json exactly as transformers' PreTrainedModel.save_pretrained writes it: the config with
    `architectures` set to the model class (what the app recognises the family by)."""
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(repo)


def save_processor(proc, repo: Path, processor_class: str | None = None) -> None:
    """preprocessor_config.json: the image processor's save_pretrained, plus `processor_class` where the family has a
    processor (as the published repos' files carry it, written by older transformers' Processor.save_pretrained;
    transformers 5 writes a nested processor_config.json instead, which transformers.js does not read). transformers.js'
    AutoProcessor picks SamProcessor (post_process_masks) from it."""
    proc.save_pretrained(repo)
    if processor_class:
        path = repo / "preprocessor_config.json"
        doc = json.loads(path.read_text())
        doc["processor_class"] = processor_class
        path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")


def write_golden(gdir: Path, name: str, doc: dict) -> Path:
    """gdir/<name>.json: {"repo", "architecture", "image", "inputs", "outputs", "cases", "meta"} with tensors in
    fixtures_goldens.tensor format."""
    def conv(v):
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, np.ndarray):
            return tensor(v)
        return v

    path = gdir / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(conv(doc), separators=(",", ":")) + "\n")
    return path


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy()


def _softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _spread_(model, seed: int) -> None:
    """transformers' default init (std 0.02 everywhere) gives near-constant outputs in a 32-wide model, which makes
    parity checks weak: re-draw weight matrices ~ N(0, 1/fan_in) (unit-scale activations), biases ~ N(0, 0.02).
    Norm weights and embeddings keep their init. (cxr_export.sam_models.reinit_ does the same for SAM.)"""
    from .sam_models import reinit_

    reinit_(model, seed=seed)


def save_fast_tokenizer(tok, repo: Path, config: dict, special: dict) -> None:
    """tokenizer.json (the `tokenizers` object) + tokenizer_config.json + special_tokens_map.json, as
    PreTrainedTokenizerFast.save_pretrained writes them, with tokenizer_class set to the family's class name."""
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **special,
                                   model_max_length=config.get("model_max_length", 512))
    fast.save_pretrained(repo)
    cfg_path = repo / "tokenizer_config.json"
    doc = json.loads(cfg_path.read_text())
    doc.update(config)
    cfg_path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    smap = repo / "special_tokens_map.json"
    if not smap.exists():  # transformers 5 no longer writes it; transformers.js repos have it
        smap.write_text(json.dumps(special, indent=2, sort_keys=True) + "\n")
