"""`cxr-export ood`: an out-of-distribution score for a classifier, from what its graph already outputs and from its
own input tensor (format "cxr-studio ood v2", method 'mahalanobis-ensemble'; app/lib/classifier/ood.ts reads it).

Components, each a Mahalanobis distance to the nearest row under one covariance shared by the rows (Lee, Lee, Lee &
Shin, "A Simple Unified Framework for Detecting Out-of-Distribution Samples and Adversarial Attacks", NeurIPS 2018,
eq. 2, tied covariance; their "feature ensemble" combines several feature sets):

  attention   on the attention maps the graph returns for rollout (output `attentions` [b, L, H, T, T]), per class:
                ent[l, t]  = mean over heads of the entropy of query token t's attention row in layer l
                recv[l, t] = log(1e-6 + mean over heads and queries of the attention token t receives in layer l)
                f(x)       = [ent (L*T values, layer-major), recv (L*T)]
  image8,     on the model input itself (ood_image_stats.py), class-agnostic: contrast-normalised grey layout on an
  image16     8x8 and a 16x16 grid, grey histogram, colour saturation, mean and spread
  s_k(x) = min_rows sqrt((f_k(x) - mu)^T P_k (f_k(x) - mu)),  P_k = (Sigma_k + shrinkage_k * mean eigenvalue * I)^-1
  score(x) = || (s_k(x) / scale_k)_k ||_2,   scale_k = the 95th percentile of s_k on the validation images

Why: the attention component alone (v1/v2's score) flagged 6.1% of Kermany test and ranked the abdomen/pelvis DICOM
of ../shared at 1.12x its threshold, below 12 of the 624 Kermany test images (their maximum: 1.26x): a patch-32 ViT's
attention statistics see "a grey X-ray" and the abdomen has chest-like grey statistics. Its layout differs (no dark
lung fields beside a bright mediastinum), and photographs differ in colour and layout: the image components see
that, the attention component keeps the adult chest X-rays apart. The combination (grids, shrinkage, p) was chosen
on validation and the cross-validated labelled OOD set (the model card's OOD table lists what else was compared).

mu and Sigma are fitted on the Kermany *train* images the model was trained on (validation carved out exactly as
train-classifier did, seed and fraction from the card). The threshold is chosen on held-out in-distribution images
(that validation split) against a labelled out-of-distribution set (adult chest X-rays from ../shared/data/
cxr-lung-masks, the DICOM files of ../shared/data/dicom rendered with their window, and seeded synthetic non-X-ray
images) by the rule in `choose_threshold`. The figures reported for the adult images are cross-validated (K folds:
a fold's images are scored against a threshold chosen without them, so no image judges itself). Kermany test and
the non-chest images that ship in scikit-image and pydicom (ood_images.package_images; held out, never used to fit or
choose) are used for nothing but the report.

Writes <id>/ood.json (fp32) and <id>/ood.<dtype>.json (each further variant, fitted on that variant's own
outputs) and lists each as a file with role 'ood' in its manifest variant. Each P is stored as its Cholesky factor
U (P = U^T U, U upper triangular, rows packed, float32, base64), so s_k = ||U (f - mu)||.

This module is the job (fit per variant, write the documents and goldens, the CLI) and re-exports the parts:
ood_images.py, ood_image_stats.py, ood_score.py.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import manifest as mf
from .errors import ExportError
from .ood_images import (
    SYNTHETIC_KINDS, SKIMAGE_IMAGES, PYDICOM_IMAGES, synthetic_images, dicom_rgb, normalize, gather, package_images,
)
from .ood_image_stats import image_stats_features
from .ood_score import (
    MAX_VAL_FLAG, ENTROPY_EPS, RECEIVED_EPS, attention_features, embed, fit, score, choose_threshold, folds_of,
    cross_validate, auroc, encode_cholesky, decode_cholesky, score_doc, combine, OodDoc,
)


BADGE = "outside this model's training data: pediatric chest X-rays from one hospital"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def run_variant(model_path: Path, sets, ood, n_classes: int, folds: int, seed: int, threads: int, spec: dict,
                held_out=None) -> dict:
    """Fit the components on train (attention per class; each image-statistics grid class-agnostic), scale each by
    its validation 95th percentile, combine (p-norm, spec['p']), choose the threshold on validation vs the labelled
    OOD set, cross-validate; score the held-out non-chest images (package_images) and Kermany test for the report."""
    t0 = time.time()
    comps = spec["image_components"]
    img_specs = [{"mean": spec["mean"], "std": spec["std"], "grid": c["grid"], "bins": c["bins"]} for c in comps]
    named = dict(sets, ood=(ood[0], None))
    if held_out:
        named["nonchest"] = ([(lambda a=a: normalize(a, spec["prep"])) for _, a, _, _ in held_out], None)
    feats = {"attention": {}, **{f"image{c['grid']}": {} for c in comps}}
    for k, v in named.items():
        a, _, imgs = embed(model_path, v[0], threads=threads, image_stats=img_specs)
        feats["attention"][k] = a
        for c, f in zip(comps, imgs):
            feats[f"image{c['grid']}"][k] = f
    y = sets["train"][1]
    fitted, raw = {}, {}
    for name, F in feats.items():
        c = next((c for c in comps if name == f"image{c['grid']}"), None)
        yy, nc, sh = (y, n_classes, spec["attention_shrinkage"]) if c is None else (np.zeros_like(y), 1, c["shrinkage"])
        means, prec = fit(F["train"], yy, nc, sh)
        raw[name] = {k: score(e, means, prec) for k, e in F.items()}
        fitted[name] = (means, prec, float(np.quantile(raw[name]["val"], 0.95)), c)
    parts = {k: np.stack([raw[n][k] / fitted[n][2] for n in feats], 1) for k in named}
    S = {k: combine(v, spec["p"]) for k, v in parts.items()}
    groups = ood[1]
    t = choose_threshold(S["val"], S["ood"])
    cv = cross_validate(S["val"], S["ood"], groups, folds, seed)
    report = {
        "threshold": t,
        "train_flagged": float(np.mean(S["train"] > t)),
        "val_flagged": float(np.mean(S["val"] > t)),
        "test_flagged": float(np.mean(S["test"] > t)),
        "test_flagged_by_class": {str(c): float(np.mean(S["test"][sets["test"][1] == c] > t)) for c in range(n_classes)},
        **{f"{g}_flagged_in_sample": float(np.mean(S["ood"][groups == g] > t)) for g in sorted(set(groups))},
        "cross_validated": cv,
        "test_flagged_cv_thresholds": [float(np.mean(S["test"] > ct)) for ct in cv["thresholds"]],
        "auroc_val_vs_adult": auroc(S["val"], S["ood"][groups == "adult"]),
        "auroc_test_vs_adult": auroc(S["test"], S["ood"][groups == "adult"]),
        "test_max_over_threshold": float(S["test"].max() / t),
        "attention_alone": _alone(raw["attention"], groups),
        "score_quantiles": {k: [float(q) for q in np.quantile(v, [0.05, 0.5, 0.95])] for k, v in S.items()},
        "seconds": round(time.time() - t0, 1),
    }
    if held_out:
        report["nonchest"] = [{"image": n, "source": src, "licence": lic, "score": float(S["nonchest"][i]),
                               "over_threshold": float(S["nonchest"][i] / t),
                               "parts": {name: float(parts["nonchest"][i, j]) for j, name in enumerate(feats)}}
                              for i, (n, _, src, lic) in enumerate(held_out)]
        report["nonchest_flagged"] = float(np.mean(S["nonchest"] > t))
    return {"threshold": t, "fitted": fitted, "scores": S, "features": feats, "report": report}


def _alone(Sa: dict, groups) -> dict:
    """What the attention component alone (the v1/v2 score) gives under the same threshold rule, for the report."""
    t = choose_threshold(Sa["val"], Sa["ood"])
    cv = cross_validate(Sa["val"], Sa["ood"], groups, 5, 0)
    return {"threshold": t, "val_flagged": float(np.mean(Sa["val"] > t)), "test_flagged": float(np.mean(Sa["test"] > t)),
            "adult_flagged_cv": cv["adult_flagged"],
            **{f"{g}_flagged_in_sample": float(np.mean(Sa["ood"][groups == g] > t)) for g in sorted(set(groups))},
            **({"nonchest": {"over_threshold_min": float(Sa["nonchest"].min() / t),
                             "over_threshold": [float(v / t) for v in Sa["nonchest"]]}} if "nonchest" in Sa else {})}


def _component_doc(name: str, fitted: tuple, entry: dict, spec: dict) -> dict:
    means, prec, scale, c = fitted
    if c is None:
        feats = {"kind": "attention-entropy+received", "layers": int(entry["config"]["num_layers"]),
                 "tokens": int(entry["config"]["num_tokens"]), "entropy_eps": ENTROPY_EPS, "received_eps": RECEIVED_EPS,
                 "definition": "[mean_h H(a[l,h,t,:]) for l, t] + [log(eps + mean_h mean_q a[l,h,q,t]) for l, t]"}
        src, rows, sh = "attentions", "classes", spec["attention_shrinkage"]
    else:
        feats = {"kind": "image-stats", "grid": int(c["grid"]), "bins": int(c["bins"]),
                 "input_mean": [float(v) for v in spec["mean"]], "input_std": [float(v) for v in spec["std"]],
                 "definition": "see export-scripts/cxr_export/ood_image_stats.py"}
        src, rows, sh = "pixel_values (the model input)", "class-agnostic", c["shrinkage"]
    return {"name": name, "output": src, "features": feats, "rows": rows, "shrinkage": sh, "dim": int(means.shape[1]),
            "means": [[float(np.float32(v)) for v in row] for row in means], "cholesky": encode_cholesky(prec),
            "scale": scale}


def write_doc(path: Path, entry: dict, dtype: str, res: dict, sizes: dict, spec: dict) -> dict:
    doc = {
        "format": "cxr-studio ood v2",
        "method": "mahalanobis-ensemble",
        "reference": "Lee et al., NeurIPS 2018 (arXiv:1807.03888), eq. 2 (tied covariance) per feature set, combined "
                     "across feature sets; per component s_k = min over rows of ||U_k (f_k - mu_k)||, "
                     "score = p-norm over k of s_k / scale_k",
        "model": entry["id"],
        "dtype": dtype,
        "components": [_component_doc(name, f, entry, spec) for name, f in res["fitted"].items()],
        "combine": {"p": "inf" if np.isinf(spec["p"]) else float(spec["p"])},
        "classes": entry["labels"],
        "threshold": float(res["threshold"]),
        "badge": BADGE,
        "fitted_on": f"kermany-cxr-224 train split minus the validation carve-out ({sizes['train']} images); "
                     f"scales = the 95th percentile of each component on the {sizes['val']} validation images",
        "threshold_rule": f"max Youden J (OOD flagged - validation flagged) with at most {MAX_VAL_FLAG:.0%} of the "
                          f"{sizes['val']} validation images flagged, against {sizes['ood']} labelled OOD images "
                          "(adult CXR cxr-lung-masks, ../shared/data/dicom, seeded synthetic non-X-ray images)",
        "report": res["report"],
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return doc


def write_goldens(path: Path, sets, ood, res: dict, doc: dict, data: Path, per: int = 3) -> None:
    """A few real images with their scores under the stored statistics (float32 as stored, OodDoc), and each
    component's features, for the app's test (app/lib/classifier/ood.ts is checked on the features and the score
    apart)."""
    from . import data as D

    test = D.kermany_split(data, "test")
    test_idx = [0, 1, 2, len(test) - 3, len(test) - 2, len(test) - 1][: 2 * per]
    ood_idx = [i for i, g in enumerate(ood[1]) if g == "adult"][:per] + \
              [i for i, g in enumerate(ood[1]) if g == "dicom"]
    F = res["features"]
    per = [np.concatenate([F[n]["test"][test_idx], F[n]["ood"][ood_idx]]) for n in F]
    od = OodDoc(doc)
    parts = od.parts(per)
    scores = combine(parts, od.p)
    names = [Path(test[i][0]).relative_to(data.parent).as_posix() for i in test_idx] + [ood[2][i] for i in ood_idx]
    g = {"reference": "onnxruntime (Python) attentions and the model input of the app's preprocessing (PIL decode; "
                      "DICOM by ood_images.dicom_rgb), ood_score.OodDoc on the ood.json as stored, float64",
         "threshold": doc["threshold"],
         "images": [{"path": n, "score": float(scores[i]), "ood": bool(scores[i] > doc["threshold"]),
                     "parts": {name: float(parts[i, j]) for j, name in enumerate(F)},
                     "features": {name: [float(v) for v in per[j][i]] for j, name in enumerate(F)}}
                    for i, n in enumerate(names)]}
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
    prep = entry["preprocessing"]
    spec = {"mean": prep["mean"], "std": prep["std"], "prep": prep, "attention_shrinkage": 1e-3,
            "image_components": [{"grid": int(g), "bins": args.bins, "shrinkage": float(sh)}
                                 for g, sh in (x.split(":") for x in args.image_grids)],
            "p": float("inf") if args.combine_p == "inf" else float(args.combine_p)}
    held_out = None if args.no_package_images else package_images()
    summary = {}
    for dtype in args.dtypes:
        variant = entry["variants"].get(dtype)
        if not variant:
            continue
        graph = next(f for f in variant["files"] if f["role"] == "model")
        res = run_variant(models_dir / graph["path"], sets, ood, len(entry["labels"]), args.folds, args.seed,
                          args.threads, spec, held_out)
        name = "ood.json" if dtype == "fp32" else f"ood.{dtype}.json"
        out = models_dir / args.model_id / name
        doc = write_doc(out, entry, dtype, res, sizes, spec)
        variant["files"] = [f for f in variant["files"] if f["role"] != "ood"] + [mf.file_record(models_dir, out, "ood")]
        if dtype == "fp32" and args.goldens_dir:
            write_goldens(Path(args.goldens_dir) / "ood-images.json", sets, ood, res, doc, data)
        summary[dtype] = res["report"]
        print(json.dumps({dtype: res["report"]}), flush=True)
    fp32_ood = next((f for f in entry["variants"].get("fp32", {}).get("files", []) if f["role"] == "ood"), None)
    for dtype in args.reuse_fp32 or []:
        # fp16 (WebGPU with shader-f16 only): its attentions differ from fp32's by fp16 rounding, far below what moves
        # a Mahalanobis distance; it shares fp32's statistics file rather than a fit of its own (a 7-9 min CPU fit
        # through ONNX Runtime's fp16 kernels per variant).
        variant = entry["variants"].get(dtype)
        if variant and fp32_ood and dtype not in args.dtypes:
            variant["files"] = [f for f in variant["files"] if f["role"] != "ood"] + [dict(fp32_ood)]
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
    p.add_argument("--reuse-fp32", nargs="*", default=[],
                   help="variants (e.g. fp16) that list fp32's ood.json instead of a fit of their own")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--synthetic-per-kind", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--image-grids", nargs="+", default=["8:1e-3", "16:0.1"],
                   help="image-statistics components, grid:shrinkage each (see ood_image_stats.py)")
    p.add_argument("--bins", type=int, default=16, help="grey histogram bins of the image-statistics component")
    p.add_argument("--combine-p", default="2", help="p of the p-norm combining the scaled components ('inf': max)")
    p.add_argument("--no-package-images", action="store_true",
                   help="skip the held-out non-chest images of scikit-image and pydicom in the report")
    p.add_argument("--goldens-dir", type=Path, default=None, help="write <dir>/ood-images.json (fp32)")
    p.set_defaults(func=run)
