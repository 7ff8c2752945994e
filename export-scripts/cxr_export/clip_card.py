"""`train-clip --export-to DIR` (or `evaluate_and_export` directly): exports cxr-clip, adds its int8 and fp16 variants
and writes its model card, every number measured with ONNX Runtime on each variant (and PyTorch for reference) on
images training never used (Kermany test 624, the 66 adult images held out for lung-sam's card) with prompts
training never saw (clip_captions' held-out phrasings)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import manifest as mf

BIOMEDCLIP_SEED_000 = {"source": "../shared/seeds/000_57d5e97111addca0.txt (BiomedCLIP zero-shot, same Kermany test)",
                       "accuracy": 0.625, "tn": 0, "note": "every image labelled PNEUMONIA"}
COMPARED = ("accuracy", "precision", "recall", "specificity", "f1", "auc", "ece_15")


def eval_data(log=print) -> dict:
    """Kermany test (pixels [624,3,224,224], y, subtype) + adult held-out pixels, the app's preprocessing."""
    from . import clip_data as CD
    from .train_classifier import repo_root, to_tensor

    shared = repo_root().parent / "shared" / "data"
    te = CD.kermany(shared / "kermany-cxr-224", "test", 224)
    _, held = CD.lung_mask_split(shared / "cxr-lung-masks")
    ad = CD.adult(shared / "cxr-lung-masks", held, 224)
    log(f"card data: Kermany test {len(te['y'])}, adult held-out {len(held)}")
    return {"x": to_tensor(te["u8"]).numpy(), "y": te["y"], "sub": te["subtype"], "xa": to_tensor(ad["u8"]).numpy()}


def card_for(img_fn, text_fn, logit_scale: float, data: dict) -> dict:
    from .clip_eval import card

    from .clip_export import DEFAULT_PROMPTS

    return card(img_fn(data["x"]), data["y"], data["sub"], img_fn(data["xa"]), text_fn, logit_scale, DEFAULT_PROMPTS)


def classifier_precision_at_5(data: dict) -> float:
    """The classifier embedding's precision@5 on the same images (pneumonia-vit model.onnx 'embedding')."""
    from .clip_eval import precision_at_k
    from .parity import run_onnx
    from .train_classifier import repo_root

    g = repo_root() / "public/models/pneumonia-vit/model.onnx"
    e = np.concatenate([run_onnx(g, {"pixel_values": data["x"][s:s + 64]})["embedding"]
                        for s in range(0, len(data["x"]), 64)])
    return precision_at_k(e, data["y"])


def flat_metrics(cards: dict) -> dict:
    """card.metrics (Record<string, number|string>): fp32 ONNX default-prompt metrics (accuracy .. ece_15, what
    app/lib/models/quantized.ts compares), <dtype>_ ones, and the held-out headline figures."""
    f = cards["fp32"]
    out: dict = {"dataset": "Kermany test (624), held-out prompts; adult: cxr-lung-masks lung-sam hold-out (66)",
                 "runtime": "onnxruntime CPU"}
    out.update({k: f["default_prompts"][k] for k in COMPARED + ("tp", "tn", "fp", "fn", "n")})
    for dt in ("int8", "fp16"):
        if dt in cards:
            out.update({f"{dt}_{k}": cards[dt]["default_prompts"][k] for k in COMPARED})
            out[f"{dt}_heldout_auc_mean"] = cards[dt]["heldout_auc"]["mean"]
    for k, name in (("heldout_auc", "heldout_auc"), ("heldout_accuracy", "heldout_accuracy"),
                    ("bacterial_viral_auc", "bacterial_viral_auc"), ("pediatric_adult_auc", "pediatric_adult_auc"),
                    ("pediatric_adult_accuracy", "pediatric_adult_accuracy")):
        out[f"{name}_mean"] = f[k]["mean"]
        out[f"{name}_std"] = f[k]["std"]
    out["precision_at_5"] = f["precision_at_5"]
    return out


def evaluate_and_export(final_dir: Path, models_dir: Path, args=None, log=print) -> dict:
    import torch

    from .clip_export import MODEL_ID, OrtClip, export
    from .clip_eval import text_embeddings
    from .clip_model import load_cxr_clip
    from .quantize import quantize

    t0 = time.process_time()
    model = load_cxr_clip(final_dir)
    scale = float(model.logit_scale.exp())
    data = eval_data(log)

    def torch_img(x):
        with torch.no_grad():
            return np.concatenate([model.encode_image(torch.from_numpy(x[s:s + 64])).numpy()
                                   for s in range(0, len(x), 64)])

    cards = {"pytorch": card_for(torch_img, lambda ps: text_embeddings(model, ps), scale, data)}
    log(f"PyTorch card: held-out AUC {cards['pytorch']['heldout_auc']}")
    summary = json.loads((Path(final_dir).parent / "summary.json").read_text()) \
        if (Path(final_dir).parent / "summary.json").exists() else {}
    source = ("trained by cxr-export train-clip (scripts/train-cxr-clip.sh): LiT on pneumonia-vit + "
              "CLIPTextModelWithProjection, SigLIP loss with label-derived positives")
    export(model, models_dir, source)
    folder = Path(models_dir) / MODEL_ID
    feeds = _feeds_fn(data)
    for dt in ("int8", "fp16"):
        quantize(models_dir, MODEL_ID, dt, feeds_fn=feeds)
    for dt, suf in (("fp32", ""), ("int8", ".int8"), ("fp16", ".fp16")):
        r = OrtClip(folder, suf, one_per_call=dt == "int8")
        cards[dt] = card_for(r.images, r.texts, scale, data)
        log(f"{dt} ONNX card: default {cards[dt]['default_prompts']['auc']:.4f} held-out AUC "
            f"{cards[dt]['heldout_auc']['mean']:.4f}")
    metrics = flat_metrics(cards)
    int8_ok = max(abs(metrics[f"int8_{k}"] - metrics[k]) for k in COMPARED) <= 0.005
    clf_p5 = classifier_precision_at_5(data)
    entry_card = {
        "summary": "The project's own image-text model for zero-shot chest X-ray labels: pneumonia-vit's image tower "
                   "(locked except its last block, LiT) + a CLIP text tower trained here with SigLIP's loss on "
                   "captions generated from each image's labels. It knows only the findings it was trained on.",
        "known_findings": ["normal", "pneumonia", "bacterial / viral pneumonia", "COVID-19 pneumonia", "ARDS",
                           "pediatric / adult", "PA / AP / supine (adult)", "sex, age band (adult)"],
        "unknown_prompts": "Prompts outside these findings (another body part such as 'a knee radiograph', a finding "
                           "such as 'cardiomegaly') give meaningless scores: words never seen in training are blank "
                           "to the text tower, and the softmax still sums to 1 over whatever labels you type.",
        "intended_use": "Research and teaching: typed-prompt labels of chest X-rays among the known findings.",
        "limitations": "Not for clinical use. Pediatric Kermany images and ~250 adult COVID-19 images only; the "
                       "captions come from a grammar, not reports.",
        "metrics": metrics,
        "int8_matches_fp32": bool(int8_ok),
        "evaluation": {k: v for k, v in cards.items()},
        "comparison": {"biomedclip_seed_000": BIOMEDCLIP_SEED_000,
                       "classifier_precision_at_5": clf_p5},
        "training": {k: summary.get(k) for k in ("steps", "best_step", "val", "cpu_s", "known_tokens", "args")},
    }
    man = mf.load(models_dir)
    entry = next(e for e in man["models"] if e["id"] == MODEL_ID)
    entry["card"] = entry_card
    mf.upsert_entry(models_dir, entry)
    out = Path(final_dir).parent / "card.json"
    out.write_text(json.dumps(entry_card, indent=1, default=float) + "\n")
    log(f"card written to {out} and {models_dir}/manifest.json; evaluation + export CPU {time.process_time() - t0:.0f} s")
    return entry_card


def _feeds_fn(data: dict):
    """Real quantization parity inputs: 4 test images for the image graph, held-out prompts for the text graph."""
    from .clip_captions import heldout_prompt_sets
    from .clip_model import tokenize

    prompts = [p for s in heldout_prompt_sets(4) for ps in s.values() for p in ps]

    def feeds(src: Path) -> dict:
        if src.name.startswith("image_encoder"):
            return {"pixel_values": data["x"][:4]}
        return {"input_ids": tokenize(prompts, 77)}

    return feeds
