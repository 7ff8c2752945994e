"""`cxr-export hub-fixtures --out DIR`: tiny random-weight models written exactly in the Optimum / transformers.js
Hugging Face Hub layout (as the Xenova/* and onnx-community/* repos are), for the app's "model from the Hub" tests
(issue 20) served by scripts/hub-server.mjs. No network, no manifest.json.

DIR/<org>/<name>/ for each repo (org = cxr-fixtures):
  tiny-clip       CLIPModel                   onnx/{model,text_model,vision_model}{,_quantized,_fp16}.onnx,
                                              model.safetensors (learned logit_scale: exp 50, config init 14.3)
  tiny-siglip     SiglipModel                 onnx/{model,text_model,vision_model}{,_quantized,_fp16}.onnx,
                                              model.safetensors (learned logit_scale exp 10, logit_bias -1.5)
  tiny-sam        SamModel                    onnx/{vision_encoder,prompt_encoder_mask_decoder}{,_quantized,_fp16}.onnx
  tiny-sam-boxes  SamModel (same weights)     as tiny-sam, the decoder with an input_boxes input (hub_fixtures_sam.py)
  tiny-vit-cxr    ViTForImageClassification   onnx/model{,_quantized,_fp16}.onnx, id2label NORMAL/PNEUMONIA
  tiny-bert       BertModel                   an architecture the app does not run (the "wrong architecture" case)
each with config.json (transformers' save_pretrained), preprocessor_config.json (the image processor's own
save_pretrained) and, for CLIP/SigLIP/BERT, tokenizer.json + tokenizer_config.json + special_tokens_map.json.
  _quantized  onnxruntime.quantization.quantize_dynamic (int8 MatMul weights), as transformers.js' dtype "q8"
  _fp16       float16 weights and compute with float32 graph inputs/outputs (cxr_export.quantize), dtype "fp16"
DIR/_goldens/<name>.json: PyTorch outputs (transformers' own model classes, fp32) on a fixed synthetic image
(DIR/_goldens/<image>.png, sized so that resizing is the identity) and fixed prompts, with the processor's inputs;
meta holds the ONNX fp32 vs PyTorch max abs diff (<= 1e-4, enforced) and the _quantized / _fp16 vs fp32 diffs.
Tensors: {"dims": [...], "dtype": "float32"|"int64", "data": [...]} (cxr_export.fixtures_goldens.tensor).
Same --seed gives the same models. Optimum is not needed: the graphs are exported with torch.onnx (TorchScript
exporter, opset 17) with Optimum's input/output names and dynamic axes (optimum/exporters/onnx/model_configs.py).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .common import seed_all, write_json
from .errors import ExportError
from .hub_fixtures_common import ATOL, GOLDENS, ORG, _np, _softmax, _spread_, export_graph, save_config, \
    save_fast_tokenizer, save_processor, write_golden, write_image

def vit_repo(out: Path, gdir: Path, seed: int) -> dict:
    """ViTForImageClassification (2 labels, NORMAL / PNEUMONIA), onnx/model.onnx: pixel_values -> logits."""
    import torch
    from PIL import Image
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor
    from transformers.models.vit.image_processing_pil_vit import ViTImageProcessorPil

    seed_all(seed)
    cfg = ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, image_size=32,
                    patch_size=8, id2label={0: "NORMAL", 1: "PNEUMONIA"}, label2id={"NORMAL": 0, "PNEUMONIA": 1},
                    attn_implementation="eager")
    model = ViTForImageClassification(cfg).eval()
    _spread_(model, seed)
    size = {"height": 32, "width": 32}
    repo = out / ORG / "tiny-vit-cxr"
    (repo / "onnx").mkdir(parents=True, exist_ok=True)
    save_config(model, repo)
    save_processor(ViTImageProcessor(size=size), repo)
    img_name, rgb = write_image(gdir, 32, 32)
    pix = ViTImageProcessorPil(size=size)(images=Image.fromarray(rgb, "RGB"), return_tensors="np")["pixel_values"]
    pix = pix.astype(np.float32)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            return self.m(pixel_values=pixel_values).logits

    with torch.no_grad():
        logits = _np(Wrap()(torch.from_numpy(pix)))
    rep = export_graph(Wrap(), (torch.from_numpy(pix),), repo / "onnx", "model", ["pixel_values"], ["logits"],
                       {"pixel_values": {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"},
                        "logits": {0: "batch_size"}}, {"logits": logits}, {"pixel_values": pix})
    probs = _softmax(logits)
    write_golden(gdir, "tiny-vit-cxr", {
        "repo": f"{ORG}/tiny-vit-cxr", "architecture": "ViTForImageClassification", "image": img_name,
        "inputs": {"pixel_values": pix}, "outputs": {"logits": logits, "probs": probs},
        "labels": [cfg.id2label[i] for i in range(2)],
        "meta": {"reference": "transformers ViTForImageClassification + ViTImageProcessorPil (PyTorch, fp32)",
                 "atol": ATOL, "parity": {"model": rep}}})
    return {"repo": f"{ORG}/tiny-vit-cxr", "parity": {"model": rep}}


def bert_repo(out: Path, seed: int) -> dict:
    """A tiny BertModel in the same layout: an architecture outside the app's families (the wrong-architecture
    case). Its onnx/model.onnx takes input_ids, attention_mask, token_type_ids -> last_hidden_state."""
    import torch
    from transformers import BertConfig, BertModel

    from .tokenizer_builders import wordpiece_tokenizer, wordpiece_vocab

    seed_all(seed)
    vocab = wordpiece_vocab()
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=32, attn_implementation="eager")
    model = BertModel(cfg).eval()
    repo = out / ORG / "tiny-bert"
    (repo / "onnx").mkdir(parents=True, exist_ok=True)
    save_config(model, repo)
    tok = wordpiece_tokenizer(vocab, 16)
    tok.no_padding()
    tok.no_truncation()
    save_fast_tokenizer(tok, repo, {"tokenizer_class": "BertTokenizer", "model_max_length": 32, "do_lower_case": True},
                        {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                         "mask_token": "[MASK]"})
    ids = torch.tensor([tok.encode("chest x ray").ids])
    mask = torch.ones_like(ids)
    tt = torch.zeros_like(ids)

    class Wrap(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.m(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)[0]

    with torch.no_grad():
        ref = _np(Wrap()(ids, mask, tt))
    seq = {0: "batch_size", 1: "sequence_length"}
    rep = export_graph(Wrap(), (ids, mask, tt), repo / "onnx", "model", ["input_ids", "attention_mask",
                       "token_type_ids"], ["last_hidden_state"],
                       {"input_ids": seq, "attention_mask": seq, "token_type_ids": seq, "last_hidden_state": seq},
                       {"last_hidden_state": ref},
                       {"input_ids": ids.numpy(), "attention_mask": mask.numpy(), "token_type_ids": tt.numpy()})
    return {"repo": f"{ORG}/tiny-bert", "parity": {"model": rep}}


REPOS = ["tiny-clip", "tiny-siglip", "tiny-sam", "tiny-vit-cxr", "tiny-bert"]


def write_hub_fixtures(out: Path, seed: int = 0, only: list[str] | None = None) -> dict:
    """Writes the repos (all of REPOS, or `only`) under out/<ORG>/ and their goldens under out/_goldens/. Each repo
    is rebuilt from scratch (a stale file of an earlier run never lingers). Returns a report with parity numbers,
    bytes and wall time."""
    import shutil

    import torch

    from .hub_fixtures_sam import sam_repo
    from .hub_fixtures_text import clip_repo, siglip_repo

    torch.set_num_threads(1)  # tiny models: one thread is fast and the numbers do not depend on the thread count
    out = Path(out)
    gdir = out / GOLDENS
    report: dict = {}
    builders = {"tiny-clip": lambda: clip_repo(out, gdir, seed), "tiny-siglip": lambda: siglip_repo(out, gdir, seed),
                "tiny-sam": lambda: sam_repo(out, gdir, seed), "tiny-vit-cxr": lambda: vit_repo(out, gdir, seed),
                "tiny-bert": lambda: bert_repo(out, seed)}
    for name in only or REPOS:
        if name not in builders:
            raise ExportError(f"unknown hub fixture {name!r}; choose from {REPOS}")
        t0 = time.time()
        dirs = [out / ORG / n for n in ([name, "tiny-sam-boxes"] if name == "tiny-sam" else [name])]
        for d in dirs:
            if d.exists():
                shutil.rmtree(d)
        report[name] = builders[name]()
        report[name]["bytes"] = sum(p.stat().st_size for d in dirs for p in d.rglob("*") if p.is_file())
        report[name]["wall_s"] = round(time.time() - t0, 1)
    report["total_bytes"] = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    write_json(out / GOLDENS / "report.json", report)
    if not only or set(only) >= set(REPOS):
        write_json(out / GOLDENS / "stamp.json", {"sources": SOURCES, "hash": sources_hash(SOURCES)})
    return report


# The modules whose code decides the fixtures' bytes. _goldens/stamp.json records their hash after a full run, so a
# test can tell a stale folder (tests/unit/helpers/hub-fixtures.ts, export-scripts/tests/test_hub_fixtures.py).
SOURCES = ["hub_fixtures.py", "hub_fixtures_common.py", "hub_fixtures_text.py", "hub_fixtures_sam.py",
           "sam_models.py", "quantize.py", "sam_layouts_hf.py", "sam_layouts_cases.py", "fixtures_goldens.py"]


def sources_hash(sources: list[str]) -> str:
    """sha256 over the listed cxr_export modules' bytes, in order; first 16 hex digits."""
    import hashlib

    h = hashlib.sha256()
    for name in sources:
        h.update((Path(__file__).parent / name).read_bytes())
    return h.hexdigest()[:16]


def is_fresh(out: Path) -> bool:
    """out holds a full run of the current generator (stamp.json's hash matches the sources now)."""
    try:
        stamp = json.loads((Path(out) / GOLDENS / "stamp.json").read_text())
        return stamp["sources"] == SOURCES and stamp["hash"] == sources_hash(SOURCES)
    except (OSError, ValueError, KeyError):
        return False


def run(args: argparse.Namespace) -> dict:
    t0 = time.time()
    report = write_hub_fixtures(args.out, args.seed, args.only)
    report["wall_s"] = round(time.time() - t0, 1)
    print(json.dumps(report, indent=1))
    return report


def register(subparsers) -> None:
    p = subparsers.add_parser("hub-fixtures", help="write tiny random models in the transformers.js Hub layout",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="root folder: <out>/<org>/<name>/ and <out>/_goldens/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"subset of {REPOS}")
    p.set_defaults(func=run)
