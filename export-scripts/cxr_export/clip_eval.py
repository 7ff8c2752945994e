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


# ----------------------------------------------------------------------------------------------------------------
# The model card (from embeddings, so the same code judges PyTorch and every ONNX variant)
# ----------------------------------------------------------------------------------------------------------------

UNKNOWN_PROMPTS = {  # prompts the model cannot know: another body part, a finding the grammar never names
    "knee": {"KNEE": ["a knee radiograph"], "CHEST": ["a chest x-ray"]},
    "cardiomegaly": {"CARDIOMEGALY": ["cardiomegaly"], "NORMAL": ["a normal chest x-ray"]},
}


def probabilities_from(img: np.ndarray, text_fn, logit_scale: float, prompts: dict[str, list[str]]) -> np.ndarray:
    """label_probabilities with the text tower given as text_fn(list[str]) -> [n, D] (PyTorch or ONNX Runtime)."""
    lab = np.stack([_unit(_unit(text_fn(ps)).mean(0)) for ps in prompts.values()])
    logits = _unit(img) @ lab.T * logit_scale
    logits -= logits.max(1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(1, keepdims=True)


def _spread(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0, "min": float(v.min()),
            "max": float(v.max()), "n_sets": int(len(v))}


def precision_at_k(emb: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Mean over images of the fraction of its k nearest neighbours (cosine, itself excluded) sharing its label
    (app/lib/embeddings precisionAtK, as the batch summary's precision_at_5)."""
    u = _unit(np.asarray(emb, dtype=np.float64))
    s = u @ u.T
    np.fill_diagonal(s, -np.inf)
    nn = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return float((labels[nn] == labels[:, None]).mean())


def card(test_img: np.ndarray, test_y: np.ndarray, test_sub: np.ndarray, adult_img: np.ndarray, text_fn,
         logit_scale: float, default_prompts: dict) -> dict:
    """All card numbers. test_img [624, D] Kermany test embeddings (y 1 = pneumonia, sub 'bacteria'|'virus'|''),
    adult_img [M, D] the lung-mask held-out images. No threshold is tuned: accuracy is the argmax over labels."""
    from .clip_captions import heldout_pair_prompts, heldout_population_prompts, heldout_prompt_sets
    from .vit import binary_metrics, roc_auc

    P = lambda img, pr: probabilities_from(img, text_fn, logit_scale, pr)  # noqa: E731
    out: dict = {}
    d = binary_metrics(test_y, P(test_img, default_prompts)[:, list(default_prompts).index("PNEUMONIA")])
    out["default_prompts"] = d
    aucs, accs = [], []
    for s in heldout_prompt_sets(12):
        p = P(test_img, s)[:, 0]
        aucs.append(roc_auc(test_y, p))
        accs.append(float(((p >= 0.5).astype(int) == test_y).mean()))
    out["heldout_auc"], out["heldout_accuracy"] = _spread(aucs), _spread(accs)
    m = test_sub != ""
    bv = [roc_auc(test_sub[m] == "bacteria", P(test_img[m], s)[:, 0])
          for s in heldout_pair_prompts({"BACTERIAL": "bacterial pneumonia", "VIRAL": "viral pneumonia"})]
    out["bacterial_viral_auc"] = _spread(bv)
    both = np.concatenate([test_img, adult_img])
    is_adult = np.r_[np.zeros(len(test_img)), np.ones(len(adult_img))].astype(int)
    pa, pacc = [], []
    for s in heldout_population_prompts(12):
        p = P(both, s)[:, 1]
        pa.append(roc_auc(is_adult, p))
        pacc.append(float(((p >= 0.5).astype(int) == is_adult).mean()))
    out["pediatric_adult_auc"], out["pediatric_adult_accuracy"] = _spread(pa), _spread(pacc)
    out["n_test"], out["n_adult_heldout"] = int(len(test_img)), int(len(adult_img))
    unk = {}
    for name, pr in UNKNOWN_PROMPTS.items():
        p = P(test_img, pr)[:, 0]
        unk[name] = {"prompts": pr, "mean_prob_first_label": float(p.mean()),
                     "frac_first_label": float((p >= 0.5).mean()),
                     "auc_pneumonia_vs_normal": roc_auc(test_y, p)}
    out["unknown_prompts"] = unk
    out["precision_at_5"] = precision_at_k(test_img, test_y)
    return out
