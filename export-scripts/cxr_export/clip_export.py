"""cxr-clip to the app: ONNX export (clip.export_clip's layout: image_encoder.onnx, text_encoder.onnx, tokenizer.json),
int8 + fp16 variants (quantize.py), the model card measured with ONNX Runtime per variant, the manifest entry.

The text graph stores only the token-embedding rows training used (CompactTokenEmbedding: a remap table
[vocab] -> row, and the rows; every other id maps to one all-zero row, which is what restrict_vocabulary made those
rows in PyTorch), so the graph is a few MB instead of 49,408 x 256 floats, and is exactly the PyTorch model.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from . import manifest as mf
from .errors import ExportError

MODEL_ID = "cxr-clip"
DEFAULT_PROMPTS = {  # training-grammar phrasings (the card's held-out sets never are)
    "PNEUMONIA": ["a chest x-ray showing pneumonia", "chest radiograph with consolidation",
                  "a chest x-ray with signs of pneumonia"],
    "NORMAL": ["a chest x-ray with no pneumonia", "chest radiograph with clear lungs", "a normal chest x-ray"],
}
KNOWN_FINDINGS = ["normal", "pneumonia", "bacterial pneumonia", "viral pneumonia", "COVID-19 pneumonia", "ARDS",
                  "pediatric / adult", "PA / AP / supine view (adults)", "sex and age band (adults)"]


def compact_text_copy(model):
    """A deep copy of model whose text token embedding is a CompactTokenEmbedding over the known ids (rows of the
    other ids must be zero: restrict_vocabulary). Raises ExportError when a non-known row is not zero."""
    import torch

    known = model.config.get("known_token_ids")
    if not known:
        raise ExportError("the model has no known_token_ids (run restrict_vocabulary after training)")
    m = copy.deepcopy(model).eval()
    emb = m.text.text_model.embeddings.token_embedding
    w = emb.weight.detach()
    mask = torch.ones(w.shape[0], dtype=torch.bool)
    mask[known] = False
    if w[mask].abs().max() > 0:
        raise ExportError("token rows outside known_token_ids are not zero: the compact graph would differ")

    class CompactTokenEmbedding(torch.nn.Module):
        """ids int64 [b,L] -> weight[remap[ids]] [b,L,H]; remap sends unknown ids to row 0 (zeros)."""

        def __init__(self):
            super().__init__()
            remap = torch.zeros(w.shape[0], dtype=torch.int64)
            remap[torch.tensor(known)] = torch.arange(1, len(known) + 1)
            self.register_buffer("remap", remap)
            self.weight = torch.nn.Parameter(torch.cat([torch.zeros(1, w.shape[1]), w[known]]))

        def forward(self, ids):
            return torch.nn.functional.embedding(self.remap[ids], self.weight)

    m.text.text_model.embeddings.token_embedding = CompactTokenEmbedding()
    return m


def export(model, models_dir: Path, source: str, card: dict | None = None, model_id: str = MODEL_ID) -> dict:
    """fp32 export through clip.export_clip (parity within 1e-4 on a seeded batch), then the same check on real
    inputs: 8 Kermany test images and the 24 held-out prompts, PyTorch (full vocabulary) vs ONNX Runtime."""
    from .clip import export_clip
    from .clip_model import tokenizer

    info = dict(context_length=77, pad_token_id=49407, image_size=224, mean=model.config["mean"],
                std=model.config["std"], interpolation="bilinear", source=source, license="Apache-2.0",
                name="cxr-clip (Kermany + adult CXR, trained here)")
    extra = {"default_prompts": DEFAULT_PROMPTS, "known_findings": KNOWN_FINDINGS,
             "trained_here": True, "text_tower": "CLIPTextModelWithProjection (SD 1.x CLIP BPE tokenizer)"}
    entry = export_clip(compact_text_copy(model), tokenizer(77), info, models_dir, model_id, "trained",
                        write_manifest=False, extra_config=extra)
    entry["name"] = info["name"]
    entry["config"]["parity_real"] = real_parity(model, Path(models_dir) / model_id)
    entry["card"] = card or entry["card"]
    mf.upsert_entry(models_dir, entry)
    return entry


def real_parity(model, folder: Path, n_images: int = 8) -> dict:
    """max |PyTorch - ONNX Runtime| of both towers on real inputs (Kermany test images, held-out prompts)."""
    import torch

    from .clip_captions import heldout_prompt_sets
    from .clip_model import tokenize
    from .parity import run_onnx

    x = real_pixels(n_images)
    prompts = [p for s in heldout_prompt_sets(12) for ps in s.values() for p in ps]
    ids = tokenize(prompts, 77)
    with torch.no_grad():
        ri = model.encode_image(torch.from_numpy(x)).numpy()
        rt = model.encode_text(torch.from_numpy(ids)).numpy()
    gi = run_onnx(folder / "image_encoder.onnx", {"pixel_values": x})["image_embeds"]
    gt = run_onnx(folder / "text_encoder.onnx", {"input_ids": ids})["text_embeds"]
    d = {"image_encoder": float(np.abs(ri - gi).max()), "text_encoder": float(np.abs(rt - gt).max()),
         "inputs": f"{n_images} Kermany test images, {len(prompts)} held-out prompts"}
    if max(d["image_encoder"], d["text_encoder"]) > 1e-4:
        raise ExportError(f"cxr-clip ONNX vs PyTorch on real inputs: {d}")
    return d


def test_items(n_per_class: int | None = None):
    from . import clip_data as CD
    from .train_classifier import repo_root

    return CD.kermany(repo_root().parent / "shared" / "data" / "kermany-cxr-224", "test", 224, n_per_class)


def real_pixels(n: int) -> np.ndarray:
    from .train_classifier import to_tensor

    d = test_items((n + 1) // 2)
    return to_tensor(d["u8"][:n]).numpy()


class OrtClip:
    """ONNX Runtime runner of an exported variant: images one per call for dynamic int8 (as the app does)."""

    def __init__(self, folder: Path, suffix: str, one_per_call: bool):
        import onnxruntime as ort

        from .clip_model import tokenize

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        self.img = ort.InferenceSession(str(folder / f"image_encoder{suffix}.onnx"), so)
        self.txt = ort.InferenceSession(str(folder / f"text_encoder{suffix}.onnx"), so)
        self.one = one_per_call
        self.tokenize = tokenize
        self.cache: dict[str, np.ndarray] = {}

    def images(self, x: np.ndarray) -> np.ndarray:
        b = 1 if self.one else 32
        return np.concatenate([self.img.run(None, {"pixel_values": x[s:s + b]})[0] for s in range(0, len(x), b)])

    def texts(self, prompts: list[str]) -> np.ndarray:
        for p in prompts:
            if p not in self.cache:
                self.cache[p] = self.txt.run(None, {"input_ids": self.tokenize([p], 77)})[0][0]
        return np.stack([self.cache[p] for p in prompts])
