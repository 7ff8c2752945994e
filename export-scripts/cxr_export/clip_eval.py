"""cxr-clip's evaluation: zero-shot label probabilities exactly as the app computes them, and the model card."""

from __future__ import annotations

import numpy as np


def text_embeddings(model, prompts: list[str], batch: int = 128) -> np.ndarray:
    """Unnormalized text embeddings [n, D] of prompts at the export's context length (77)."""
    import torch

    from .clip_model import tokenize

    ctx = int(model.config["text"]["max_position_embeddings"])
    out = []
    with torch.no_grad():
        for s in range(0, len(prompts), batch):
            out.append(model.encode_text(torch.from_numpy(tokenize(prompts[s:s + batch], ctx))).numpy())
    return np.concatenate(out)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)


def label_probabilities(model, image_embeds: np.ndarray, prompts: dict[str, list[str]]) -> np.ndarray:
    """[N, labels] softmax over labels of exp(logit_scale) * cosine(image, label), a label's embedding being the mean
    of its normalized prompt embeddings, renormalized (app/lib/clip/zero-shot.ts; CLIP's prompt ensembling,
    Radford et al. 2021 sec. 3.1.4). Labels in dict order."""
    lab = np.stack([_unit(_unit(text_embeddings(model, ps)).mean(0)) for ps in prompts.values()])
    logits = _unit(image_embeds) @ lab.T * float(np.exp(model.logit_scale.detach().numpy()))
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)
