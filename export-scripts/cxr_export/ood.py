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
by app/lib/classify/ood.ts.
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from pathlib import Path

import numpy as np

from . import manifest as mf
from .errors import ExportError

BADGE = "outside this model's training data: pediatric chest X-rays from one hospital"
MAX_VAL_FLAG = 0.05
SYNTHETIC_KINDS = ("uniform-noise", "gaussian-noise-gray", "color-gradient", "checkerboard", "shapes", "stripes",
                   "smooth-color-noise", "solid")


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------------------------
# Images
# ---------------------------------------------------------------------------------------------------------------


def synthetic_images(per_kind: int = 12, seed: int = 0) -> list[tuple[str, np.ndarray]]:
    """[(name, uint8 RGB [H,W,3])]: seeded non-X-ray pictures of random size (noise, gradients, checkerboards,
    coloured shapes, stripes, smooth colour noise, flat colours), per_kind of each of SYNTHETIC_KINDS."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    out = []
    for kind in SYNTHETIC_KINDS:
        for i in range(per_kind):
            h, w = int(rng.integers(160, 640)), int(rng.integers(160, 640))
            if kind == "uniform-noise":
                a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            elif kind == "gaussian-noise-gray":
                g = np.clip(rng.normal(rng.uniform(60, 190), rng.uniform(10, 70), (h, w)), 0, 255).astype(np.uint8)
                a = np.repeat(g[..., None], 3, -1)
            elif kind == "color-gradient":
                yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
                c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
                t = ((xx / w) * rng.uniform(-1, 1) + (yy / h) * rng.uniform(-1, 1)) % 1.0
                a = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8)
            elif kind == "checkerboard":
                s = int(rng.integers(8, 64))
                yy, xx = np.mgrid[0:h, 0:w]
                m = ((yy // s + xx // s) % 2).astype(bool)
                a = np.empty((h, w, 3), np.uint8)
                a[m], a[~m] = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
            elif kind == "shapes":
                im = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
                d = ImageDraw.Draw(im)
                for _ in range(int(rng.integers(3, 12))):
                    x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
                    box = [x0, y0, x0 + int(rng.integers(10, w // 2 + 11)), y0 + int(rng.integers(10, h // 2 + 11))]
                    fill = tuple(int(v) for v in rng.integers(0, 256, 3))
                    (d.ellipse if rng.random() < 0.5 else d.rectangle)(box, fill=fill)
                a = np.asarray(im)
            elif kind == "stripes":
                yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
                f, th = rng.uniform(0.02, 0.3), rng.uniform(0, np.pi)
                v = 0.5 + 0.5 * np.sin(f * (xx * np.cos(th) + yy * np.sin(th)))
                a = (v[..., None] * rng.uniform(80, 255, 3)).astype(np.uint8)
            elif kind == "smooth-color-noise":
                small = rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8)
                im = Image.fromarray(small).resize((w, h), Image.BICUBIC).filter(ImageFilter.GaussianBlur(2))
                a = np.asarray(im)
            else:  # solid
                a = np.broadcast_to(rng.integers(0, 256, 3).astype(np.uint8), (h, w, 3)).copy()
            out.append((f"synthetic/{kind}-{i:02d}", np.ascontiguousarray(a, dtype=np.uint8)))
    return out


def dicom_rgb(path) -> np.ndarray:
    """A DICOM image as the app shows it, in numpy: Modality LUT (Rescale Slope/Intercept), the first VOI window
    (Window Center/Width, PS3.3 C.11.2.1.2, linear) or the full range, MONOCHROME1 inverted, uint8 RGB."""
    import pydicom

    ds = pydicom.dcmread(str(path))
    a = ds.pixel_array.astype(np.float64)
    a = a * float(getattr(ds, "RescaleSlope", 1) or 1) + float(getattr(ds, "RescaleIntercept", 0) or 0)
    if a.ndim == 3 and a.shape[-1] == 3:
        return np.clip(a, 0, 255).astype(np.uint8)
    c, w = getattr(ds, "WindowCenter", None), getattr(ds, "WindowWidth", None)
    if c is not None and w is not None:
        c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
        w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
        y = np.clip(((a - (c - 0.5)) / max(w - 1, 1) + 0.5), 0, 1)
    else:
        lo, hi = float(a.min()), float(a.max())
        y = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        y = 1 - y
    g = np.round(y * 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, -1)


def normalize(rgb: np.ndarray, prep: dict) -> np.ndarray:
    """uint8 RGB [H,W,3] -> the app's model input [3,H',W'] (PIL resize only when the size differs)."""
    from PIL import Image

    h, w = prep["size"]
    if rgb.shape[:2] != (h, w):
        rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BICUBIC if prep["resize"] == "bicubic"
                                                     else Image.BILINEAR))
    a = rgb.astype(np.float32) / 255.0
    a = (a - np.asarray(prep["mean"], np.float32)) / np.asarray(prep["std"], np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1))


ENTROPY_EPS = 1e-9
RECEIVED_EPS = 1e-6


def attention_features(att: np.ndarray) -> np.ndarray:
    """attentions [b, L, H, T, T] (softmax rows) -> features [b, 2*L*T] (float64): per layer and token the head-mean
    entropy of its attention row, then per layer and token log(1e-6 + the head- and query-mean attention it
    receives). app/lib/classify/ood.ts computes the same."""
    a = np.asarray(att, np.float64)
    b = a.shape[0]
    ent = -(a * np.log(a + ENTROPY_EPS)).sum(-1).mean(2)  # [b, L, T]
    recv = np.log(a.mean(3).mean(2) + RECEIVED_EPS)  # [b, L, T]
    return np.concatenate([ent.reshape(b, -1), recv.reshape(b, -1)], 1)


def embed(onnx_path, inputs, batch: int = 32, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(attention features [N, 2*L*T] float64, probabilities [N,C]) of a list of model inputs [3,H,W] (or a
    callable per item); one image per run for a dynamically quantized graph."""
    from .parity import batch_coupled, run_onnx

    if batch_coupled(onnx_path):
        batch = 1  # the app runs such a graph one image at a time (its features depend on the batch otherwise)
    feats, probs = [], []
    for i in range(0, len(inputs), batch):
        x = np.stack([f() if callable(f) else f for f in inputs[i:i + batch]])
        r = run_onnx(onnx_path, {"pixel_values": x}, outputs=["attentions", "probabilities"], threads=threads)
        feats.append(attention_features(r["attentions"]))
        probs.append(r["probabilities"])
    return np.concatenate(feats), np.concatenate(probs).astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# The statistics and the score
# ---------------------------------------------------------------------------------------------------------------


def fit(emb: np.ndarray, y: np.ndarray, n_classes: int, shrinkage: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """(means [C,D], precision [D,D]): class means and the inverse of the tied (pooled within-class) covariance,
    regularised by shrinkage * mean eigenvalue on the diagonal (the embedding of a small ViT is not full rank)."""
    D = emb.shape[1]
    means = np.stack([emb[y == c].mean(0) for c in range(n_classes)])
    centred = emb - means[y]
    cov = centred.T @ centred / max(1, len(emb) - n_classes)
    cov += np.eye(D) * shrinkage * np.trace(cov) / D
    prec = np.linalg.inv(cov)
    return means, (prec + prec.T) / 2


def score(emb: np.ndarray, means: np.ndarray, prec: np.ndarray) -> np.ndarray:
    """min over classes of the Mahalanobis distance, [N]."""
    m2 = np.stack([(((emb - mu) @ prec) * (emb - mu)).sum(1) for mu in means], 1)
    return np.sqrt(np.maximum(m2, 0)).min(1)


def choose_threshold(id_scores: np.ndarray, ood_scores: np.ndarray, max_id_flag: float = MAX_VAL_FLAG) -> float:
    """The threshold (flag when score > t) that maximises Youden's J = TPR(ood) - FPR(id) among the thresholds that
    flag at most max_id_flag of the in-distribution images; candidates are the midpoints between sorted scores."""
    s = np.sort(np.concatenate([id_scores, ood_scores]))
    cands = np.concatenate([(s[1:] + s[:-1]) / 2, [s[-1] + 1e-6]])
    best, best_j = float(cands[-1]), -np.inf
    for t in cands:
        fpr = float(np.mean(id_scores > t))
        if fpr > max_id_flag:
            continue
        j = float(np.mean(ood_scores > t)) - fpr
        if j > best_j + 1e-12:
            best, best_j = float(t), j
    return best


def folds_of(n: int, k: int, seed: int) -> np.ndarray:
    """A seeded fold index in [0,k) for each of n items (balanced)."""
    rng = np.random.default_rng(seed)
    f = np.arange(n) % k
    return f[rng.permutation(n)]


def cross_validate(val_scores: np.ndarray, ood_scores: np.ndarray, ood_groups: np.ndarray, k: int, seed: int) -> dict:
    """Out-of-fold flagged fractions: the validation images and the OOD images are each split in k folds; fold i is
    judged by the threshold chosen on all other folds. Returns per group and for validation, plus the thresholds."""
    fv, fo = folds_of(len(val_scores), k, seed), folds_of(len(ood_scores), k, seed + 1)
    flagged_v = np.zeros(len(val_scores), bool)
    flagged_o = np.zeros(len(ood_scores), bool)
    thresholds = []
    for i in range(k):
        t = choose_threshold(val_scores[fv != i], ood_scores[fo != i])
        thresholds.append(t)
        flagged_v[fv == i] = val_scores[fv == i] > t
        flagged_o[fo == i] = ood_scores[fo == i] > t
    out = {"folds": k, "thresholds": thresholds, "val_flagged": float(flagged_v.mean())}
    for g in sorted(set(ood_groups.tolist())):
        out[f"{g}_flagged"] = float(flagged_o[ood_groups == g].mean())
        out[f"{g}_n"] = int((ood_groups == g).sum())
    return out


def auroc(id_scores: np.ndarray, ood_scores: np.ndarray) -> float:
    from .train_classifier import roc_auc

    return float(roc_auc(np.r_[np.zeros(len(id_scores)), np.ones(len(ood_scores))], np.r_[id_scores, ood_scores]))


def encode_cholesky(prec: np.ndarray) -> dict:
    """P = U^T U with U upper triangular (U = L^T of numpy's lower Cholesky factor); rows of U packed from the
    diagonal (row i holds U[i, i:]), little-endian float32, base64."""
    U = np.linalg.cholesky(prec).T
    D = U.shape[0]
    packed = np.concatenate([U[i, i:] for i in range(D)]).astype("<f4")
    return {"dtype": "float32", "layout": "upper-triangular-rows", "dim": D,
            "base64": base64.b64encode(packed.tobytes()).decode("ascii")}


def decode_cholesky(d: dict) -> np.ndarray:
    D = int(d["dim"])
    packed = np.frombuffer(base64.b64decode(d["base64"]), dtype="<f4").astype(np.float64)
    if packed.size != D * (D + 1) // 2:
        raise ExportError(f"cholesky: {packed.size} values, expected {D * (D + 1) // 2}")
    U = np.zeros((D, D))
    k = 0
    for i in range(D):
        U[i, i:] = packed[k:k + D - i]
        k += D - i
    return U


def score_doc(feats: np.ndarray, doc: dict) -> np.ndarray:
    """Scores with the float32 statistics exactly as stored in an ood.json (what the app computes)."""
    means = np.asarray(doc["means"], np.float64)
    U = decode_cholesky(doc["cholesky"])
    return np.sqrt(np.stack([(((feats - mu) @ U.T) ** 2).sum(1) for mu in means], 1)).min(1)


# ---------------------------------------------------------------------------------------------------------------
# The job
# ---------------------------------------------------------------------------------------------------------------


def gather(entry: dict, data: Path, shared: Path, synthetic_per_kind: int, seed: int):
    """The image sets as lists of lazily preprocessed inputs: train (fit), val, test, ood (with groups and names)."""
    from . import data as D
    from .classifier import preprocess_file
    from .train_classifier import LABELS

    prep = entry["preprocessing"]
    labels = entry["labels"]
    training = (entry.get("card") or {}).get("training") or {}
    items = D.kermany_split(data, "train")
    y = np.array([labels.index(lab) for _, lab in items])
    tr, va = D.stratified_split(y, float(training.get("val_frac", 0.1)), int(training.get("seed", 0)))
    if labels != LABELS:
        raise ExportError(f"labels {labels} differ from train-classifier's {LABELS}")

    def lazy(p):
        return lambda: preprocess_file(p, prep)

    test = D.kermany_split(data, "test")
    sets = {
        "train": ([lazy(items[i][0]) for i in tr], y[tr]),
        "val": ([lazy(items[i][0]) for i in va], y[va]),
        "test": ([lazy(p) for p, _ in test], np.array([labels.index(lab) for _, lab in test])),
    }
    ood, groups, names = [], [], []
    adult = sorted((shared / "data" / "cxr-lung-masks" / "images").glob("*"))
    if not adult:
        raise ExportError(f"no adult images under {shared}/data/cxr-lung-masks/images")
    for p in adult:
        ood.append(lazy(p))
        groups.append("adult")
        names.append(f"cxr-lung-masks/images/{p.name}")
    for p in sorted((shared / "data" / "dicom").glob("*.dcm")):
        ood.append(lambda p=p: normalize(dicom_rgb(p), prep))
        groups.append("dicom")
        names.append(f"dicom/{p.name}")
    for name, rgb in synthetic_images(synthetic_per_kind, seed):
        ood.append(lambda rgb=rgb: normalize(rgb, prep))
        groups.append("synthetic")
        names.append(name)
    return sets, (ood, np.array(groups), names)


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
