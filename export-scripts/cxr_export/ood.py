"""`cxr-export ood`: an out-of-distribution score for a classifier, from what its graph already outputs.

Method: a Mahalanobis distance to the nearest training class under one covariance shared by the classes
(Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial
Attacks", NeurIPS 2018, eq. 2, tied covariance), computed not on the final embedding alone but on features of the
attention maps the graph already returns for rollout (output `attentions` [b, L, H, T, T]):

    ent[l, t]  = mean over heads of the entropy of query token t's attention row in layer l
    recv[l, t] = log(1e-6 + mean over heads and queries of the attention token t receives in layer l)
    f(x)       = [ent (L*T values, layer-major), recv (L*T)]
    score(x)   = min_c sqrt((f(x) - mu_c)^T P (f(x) - mu_c)),   P = (Sigma + eps I)^-1

Why attention features: on the shipped pneumonia-vit the final embedding alone separated the adult images from
validation with AUROC 0.84 (45% flagged at 5% of validation); the attention features reach 0.98. The choice was made
on the cross-validated validation/OOD figures (see the model card's ood report).

mu_c and Sigma are fitted on the Kermany *train* images the model was trained on (validation carved out exactly as
train-classifier did, seed and fraction from the card). The threshold is chosen on held-out in-distribution images
(that validation split) against a labelled out-of-distribution set (adult chest X-rays from ../shared/data/
cxr-lung-masks, the DICOM files of ../shared/data/dicom rendered with their window, and seeded synthetic non-X-ray
images) by the rule in `choose_threshold`. The figures reported for the adult images are cross-validated (K folds:
a fold's images are scored against a threshold chosen without them, so no image judges itself). Kermany test is
used for nothing but its flagged fraction.

Writes <id>/ood.json (fp32) and <id>/ood.<dtype>.json (each further variant, fitted on that variant's own
outputs) and lists each as a file with role 'ood' in its manifest variant. P is stored as its Cholesky factor
U (P = U^T U, U upper triangular, rows packed, float32, base64), so the score is ||U (f - mu_c)||. The format is read
by app/lib/classifier/ood.ts.

This module is the job (fit per variant, write the documents and goldens, the CLI) and re-exports the parts:
ood_images.py, ood_score.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import manifest as mf
from .errors import ExportError
from .ood_images import SYNTHETIC_KINDS, synthetic_images, dicom_rgb, normalize, gather
from .ood_score import (
    MAX_VAL_FLAG, ENTROPY_EPS, RECEIVED_EPS, attention_features, embed, fit, score, choose_threshold, folds_of,
    cross_validate, auroc, encode_cholesky, decode_cholesky, score_doc,
)


BADGE = "outside this model's training data: pediatric chest X-rays from one hospital"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run_variant(model_path: Path, sets, ood, n_classes: int, folds: int, seed: int, threads: int) -> dict:
    t0 = time.time()
    E = {k: embed(model_path, v[0], threads=threads)[0] for k, v in sets.items()}
    E["ood"] = embed(model_path, ood[0], threads=threads)[0]
    means, prec = fit(E["train"], sets["train"][1], n_classes)
    S = {k: score(e, means, prec) for k, e in E.items()}
    groups = ood[1]
    t = choose_threshold(S["val"], S["ood"])
    cv = cross_validate(S["val"], S["ood"], groups, folds, seed)
    res = {
        "threshold": t,
        "means": means,
        "precision": prec,
        "scores": S,
        "embeddings": E,
        "report": {
            "threshold": t,
            "train_flagged": float(np.mean(S["train"] > t)),
            "val_flagged": float(np.mean(S["val"] > t)),
            "test_flagged": float(np.mean(S["test"] > t)),
            "test_flagged_by_class": {str(c): float(np.mean(S["test"][sets["test"][1] == c] > t))
                                      for c in range(n_classes)},
            **{f"{g}_flagged_in_sample": float(np.mean(S["ood"][groups == g] > t)) for g in sorted(set(groups))},
            "cross_validated": cv,
            "test_flagged_cv_thresholds": [float(np.mean(S["test"] > ct)) for ct in cv["thresholds"]],
            "auroc_val_vs_adult": auroc(S["val"], S["ood"][groups == "adult"]),
            "auroc_test_vs_adult": auroc(S["test"], S["ood"][groups == "adult"]),
            "score_quantiles": {k: [float(q) for q in np.quantile(v, [0.05, 0.5, 0.95])] for k, v in S.items()},
            "seconds": round(time.time() - t0, 1),
        },
    }
    return res


def write_doc(path: Path, entry: dict, dtype: str, res: dict, sizes: dict) -> dict:
    doc = {
        "format": "cxr-studio ood v1",
        "method": "mahalanobis-tied",
        "reference": "Lee et al., NeurIPS 2018 (arXiv:1807.03888), eq. 2, tied covariance; score = min over classes "
                     "of sqrt((f - mu_c)^T P (f - mu_c)) = ||U (f - mu_c)||",
        "model": entry["id"],
        "dtype": dtype,
        "output": "attentions",
        "features": {"kind": "attention-entropy+received", "layers": int(entry["config"]["num_layers"]),
                     "tokens": int(entry["config"]["num_tokens"]), "entropy_eps": ENTROPY_EPS,
                     "received_eps": RECEIVED_EPS,
                     "definition": "[mean_h H(a[l,h,t,:]) for l, t] + [log(eps + mean_h mean_q a[l,h,q,t]) for l, t]"},
        "classes": entry["labels"],
        "dim": int(res["means"].shape[1]),
        "means": [[float(np.float32(v)) for v in row] for row in res["means"]],
        "cholesky": encode_cholesky(res["precision"]),
        "threshold": float(res["threshold"]),
        "badge": BADGE,
        "fitted_on": f"kermany-cxr-224 train split minus the validation carve-out ({sizes['train']} images)",
        "threshold_rule": f"max Youden J (OOD flagged - validation flagged) with at most {MAX_VAL_FLAG:.0%} of the "
                          f"{sizes['val']} validation images flagged, against {sizes['ood']} labelled OOD images "
                          "(adult CXR cxr-lung-masks, ../shared/data/dicom, seeded synthetic non-X-ray images)",
        "report": res["report"],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def write_goldens(path: Path, sets, ood, res: dict, doc: dict, data: Path, per: int = 3) -> None:
    """A few real images with the scores of their ONNX Runtime attention features under the stored statistics, for
    the app's test (the features are stored too, so the test can check the feature code and the score apart)."""
    from . import data as D

    test = D.kermany_split(data, "test")
    test_idx = [0, 1, 2, len(test) - 3, len(test) - 2, len(test) - 1][: 2 * per]
    ood_idx = [i for i, g in enumerate(ood[1]) if g == "adult"][:per] + \
              [i for i, g in enumerate(ood[1]) if g == "dicom"]
    emb = np.concatenate([res["embeddings"]["test"][test_idx], res["embeddings"]["ood"][ood_idx]])
    scores = score_doc(emb, doc)
    names = [Path(test[i][0]).relative_to(data.parent).as_posix() for i in test_idx] + [ood[2][i] for i in ood_idx]
    g = {"reference": "onnxruntime (Python) attentions of the app's preprocessing (PIL decode), attention_features, "
                      "ood.json statistics, float64",
         "threshold": doc["threshold"],
         "images": [{"path": n, "score": float(s), "ood": bool(s > doc["threshold"]),
                     "features": [float(v) for v in e]} for n, s, e in zip(names, scores, emb)]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(g, indent=1) + "\n")


def run(args: argparse.Namespace) -> dict:
    from .data import shared_dir

    models_dir = Path(args.models_dir)
    manifest = mf.load(models_dir)
    entry = next((e for e in manifest["models"] if e["id"] == args.model_id), None)
    if entry is None or entry["family"] != "classifier":
        raise ExportError(f"{models_dir}/manifest.json has no classifier '{args.model_id}'")
    shared = Path(args.shared or shared_dir())
    data = Path(args.data or shared / "data" / "kermany-cxr-224")
    sets, ood = gather(entry, data, shared, args.synthetic_per_kind, args.seed)
    sizes = {"train": len(sets["train"][1]), "val": len(sets["val"][1]), "ood": len(ood[1])}
    summary = {}
    for dtype in args.dtypes:
        variant = entry["variants"].get(dtype)
        if not variant:
            continue
        graph = next(f for f in variant["files"] if f["role"] == "model")
        res = run_variant(models_dir / graph["path"], sets, ood, len(entry["labels"]), args.folds, args.seed,
                          args.threads)
        name = "ood.json" if dtype == "fp32" else f"ood.{dtype}.json"
        out = models_dir / args.model_id / name
        doc = write_doc(out, entry, dtype, res, sizes)
        variant["files"] = [f for f in variant["files"] if f["role"] != "ood"] + [mf.file_record(models_dir, out, "ood")]
        if dtype == "fp32" and args.goldens_dir:
            write_goldens(Path(args.goldens_dir) / "ood-images.json", sets, ood, res, doc, data)
        summary[dtype] = res["report"]
        print(json.dumps({dtype: res["report"]}), flush=True)
    mf.save(models_dir, manifest)
    return summary


def register(subparsers) -> None:
    p = subparsers.add_parser("ood", help="fit the out-of-distribution score of a classifier (ood.json per variant)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--id", dest="model_id", default="pneumonia-vit")
    p.add_argument("--models-dir", type=Path, default=repo_root() / "public" / "models")
    p.add_argument("--data", type=Path, default=None, help="Kermany root (default ../shared/data/kermany-cxr-224)")
    p.add_argument("--shared", type=Path, default=None, help="../shared (adult images, DICOM)")
    p.add_argument("--dtypes", nargs="+", default=["fp32", "int8"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--synthetic-per-kind", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--goldens-dir", type=Path, default=None, help="write <dir>/ood-images.json (fp32)")
    p.set_defaults(func=run)
