"""cxr-clip's goldens (tests/goldens/cxr-clip/), all from the PyTorch model:

text_encoder.json   the generic golden (tests/unit/goldens.test.ts): held-out prompts and two prompts the model cannot
                    know -> input_ids [n,77] and text_embeds; also checks the TypeScript tokenizer (meta.texts).
test-images.json    for the browser (tests/e2e/zero-shot.spec.ts; the generic runner skips this name): 8 Kermany test
                    images (PIL decode, the app's preprocessing) with their image_embeds, and softmax probabilities
                    over one label per held-out prompt (so each prompt's text embedding shows in the result), plus the
                    panel scenario (default prompts, then a typed third label) on one image.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

PANEL_IMAGE = ("PNEUMONIA", 5)  # tests/e2e/helpers.ts kermanyImage('PNEUMONIA', 5): sorted file index
TYPED_LABEL = {"VIRAL": ["a chest x-ray showing viral pneumonia"]}


def _tensor(a: np.ndarray, dtype: str) -> dict:
    return {"dims": list(a.shape), "dtype": dtype, "data": a.astype(np.float64 if dtype == "float32" else np.int64)
            .ravel().tolist()}


def golden_prompts() -> list[str]:
    from .clip_captions import heldout_prompt_sets
    from .clip_eval import UNKNOWN_PROMPTS

    held = [p for s in heldout_prompt_sets(12) for ps in s.values() for p in ps]
    return held + [UNKNOWN_PROMPTS["knee"]["KNEE"][0], UNKNOWN_PROMPTS["cardiomegaly"]["CARDIOMEGALY"][0]]


def write_goldens(model, goldens_dir: Path, kermany_root: Path, default_prompts: dict, n_per_class: int = 4) -> Path:
    import torch

    from .clip_eval import probabilities_from, text_embeddings
    from .clip_model import tokenize
    from .data import read_rgb
    from .train_classifier import to_tensor

    out = Path(goldens_dir) / "cxr-clip"
    out.mkdir(parents=True, exist_ok=True)
    prompts = golden_prompts()
    ids = tokenize(prompts, 77)
    with torch.no_grad():
        emb = model.encode_text(torch.from_numpy(ids)).numpy()
    (out / "text_encoder.json").write_text(json.dumps({
        "inputs": {"input_ids": _tensor(ids, "int64")}, "outputs": {"text_embeds": _tensor(emb, "float32")},
        "meta": {"graph": "text_encoder.onnx", "texts": prompts, "context_length": 77, "pad_token_id": 49407,
                 "atol": 1e-4, "reference": "PyTorch CxrClip.encode_text (fp32)"}}) + "\n")

    scale = float(model.logit_scale.exp())
    text_fn = lambda ps: text_embeddings(model, ps)  # noqa: E731
    per_prompt = {f"H{i:02d}": [p] for i, p in enumerate(prompts)}
    images = []
    picks = [("NORMAL", i) for i in range(n_per_class)] + [("PNEUMONIA", i) for i in range(n_per_class)]
    if PANEL_IMAGE not in picks:
        picks.append(PANEL_IMAGE)
    for label, i in picks:
        files = sorted(f for f in (Path(kermany_root) / "test" / label).iterdir() if f.suffix.lower() in (".jpeg", ".jpg"))
        rel = f"test/{label}/{files[i].name}"
        x = to_tensor(read_rgb(str(files[i]), 224)[None])
        with torch.no_grad():
            e = model.encode_image(x).numpy()
        images.append({"path": rel, "label": label, "image_embeds": e[0].astype(np.float64).tolist(),
                       "probabilities": dict(zip(per_prompt, probabilities_from(e, text_fn, scale, per_prompt)[0]
                                                 .tolist())),
                       "default": dict(zip(default_prompts, probabilities_from(e, text_fn, scale, default_prompts)[0]
                                           .tolist()))})
    typed = {**default_prompts, **TYPED_LABEL}
    panel_path = f"test/{PANEL_IMAGE[0]}/" + sorted(
        f.name for f in (Path(kermany_root) / "test" / PANEL_IMAGE[0]).iterdir())[PANEL_IMAGE[1]]
    panel_img = next(im for im in images if im["path"] == panel_path)
    pe = np.array(panel_img["image_embeds"], np.float32)[None]
    doc = {"model": "cxr-clip", "reference": "PyTorch fp32 on PIL-decoded images, the app's preprocessing and "
                                             "zero-shot rule (app/lib/clip/zero-shot.ts)",
           "logit_scale": scale, "prompt_sets": per_prompt, "default_prompts": default_prompts, "images": images,
           "panel": {"path": panel_path, "default": panel_img["default"], "typed_prompts": typed,
                     "typed": dict(zip(typed, probabilities_from(pe, text_fn, scale, typed)[0].tolist()))}}
    (out / "test-images.json").write_text(json.dumps(doc) + "\n")
    return out
