"""The statistics and the score of `cxr-export ood` (ood.py): attention-map features, the class means and tied
covariance of the Mahalanobis score (Lee et al., NeurIPS 2018, eq. 2), the threshold rule, K-fold cross-validation,
AUROC, and the packed Cholesky factor the app reads (app/lib/classifier/ood.ts)."""

from __future__ import annotations

import base64

import numpy as np

from .errors import ExportError


MAX_VAL_FLAG = 0.05

ENTROPY_EPS = 1e-9
RECEIVED_EPS = 1e-6


def attention_features(att: np.ndarray) -> np.ndarray:
    """attentions [b, L, H, T, T] (softmax rows) -> features [b, 2*L*T] (float64): per layer and token the head-mean
    entropy of its attention row, then per layer and token log(1e-6 + the head- and query-mean attention it
    receives). app/lib/classifier/ood.ts computes the same."""
    a = np.asarray(att, np.float64)
    b = a.shape[0]
    ent = -(a * np.log(a + ENTROPY_EPS)).sum(-1).mean(2)  # [b, L, T]
    recv = np.log(a.mean(3).mean(2) + RECEIVED_EPS)  # [b, L, T]
    return np.concatenate([ent.reshape(b, -1), recv.reshape(b, -1)], 1)


def embed(onnx_path, inputs, batch: int = 32, threads: int = 1, image_stats: list[dict] | None = None):
    """(attention features [N, 2*L*T] float64, probabilities [N,C]) of a list of model inputs [3,H,W] (or a
    callable per item); one image per run for a dynamically quantized graph. With image_stats (a list of {mean, std,
    grid, bins}: ood_image_stats.image_stats_features' arguments) a third item: per spec the image-statistics
    features [N, D]."""
    from .ood_image_stats import image_stats_features
    from .parity import batch_coupled, run_onnx

    if batch_coupled(onnx_path):
        batch = 1  # the app runs such a graph one image at a time (its features depend on the batch otherwise)
    feats, probs, img = [], [], [[] for _ in image_stats or []]
    for i in range(0, len(inputs), batch):
        x = np.stack([f() if callable(f) else f for f in inputs[i:i + batch]])
        r = run_onnx(onnx_path, {"pixel_values": x}, outputs=["attentions", "probabilities"], threads=threads)
        feats.append(attention_features(r["attentions"]))
        probs.append(r["probabilities"])
        for acc, spec in zip(img, image_stats or []):
            acc.append(image_stats_features(x, **spec))
    out = (np.concatenate(feats), np.concatenate(probs).astype(np.float64))
    return out + ([np.concatenate(a) for a in img],) if image_stats else out


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


def combine(parts: np.ndarray, p: float) -> np.ndarray:
    """Scaled component distances [N, K] -> combined score [N]: their p-norm (p = inf: the largest)."""
    parts = np.asarray(parts, np.float64)
    if np.isinf(p):
        return parts.max(1)
    return (parts ** p).sum(1) ** (1.0 / p)


class OodDoc:
    """A parsed ood.json (format v2 'mahalanobis-ensemble', or v1 'mahalanobis-tied' = the attention component
    alone with scale 1), scoring as app/lib/classifier/ood.ts does: per component min over rows of ||U (f - mu)||,
    divided by its scale, combined by the p-norm. Raises ExportError naming the field that is wrong."""

    def __init__(self, doc: dict):
        self.threshold = float(doc["threshold"])
        self.badge = doc.get("badge") or "outside this model's training data"
        if doc.get("method") == "mahalanobis-tied":
            comps, self.p = [dict(doc, name="attention", scale=1.0)], np.inf
        elif doc.get("method") == "mahalanobis-ensemble":
            comps = doc.get("components") or []
            p = (doc.get("combine") or {}).get("p")
            self.p = np.inf if p == "inf" else float(p)
        else:
            raise ExportError(f"Invalid ood.json: method must be 'mahalanobis-ensemble' or 'mahalanobis-tied' "
                              f"(got {doc.get('method')!r})")
        if not comps:
            raise ExportError("Invalid ood.json: components must be a non-empty list")
        self.components = [{"name": c.get("name", "attention"), "features": c["features"],
                            "means": np.asarray(c["means"], np.float64), "U": decode_cholesky(c["cholesky"]),
                            "scale": float(c.get("scale", 1.0))} for c in comps]

    def features(self, att: np.ndarray | None, x: np.ndarray | None) -> list[np.ndarray]:
        """Per component, features [N, D] from the graph's attentions [N,L,H,T,T] and the model input x [N,3,H,W]."""
        from .ood_image_stats import image_stats_features

        out = []
        for c in self.components:
            f = c["features"]
            if f["kind"] == "attention-entropy+received":
                if att is None:
                    raise ExportError("ood: the statistics need the attentions output")
                out.append(attention_features(att))
            elif f["kind"] == "image-stats":
                if x is None:
                    raise ExportError("ood: the statistics need the model input")
                out.append(image_stats_features(x, f["input_mean"], f["input_std"], int(f["grid"]), int(f["bins"])))
            else:
                raise ExportError(f"Invalid ood.json: unknown features.kind {f['kind']!r}")
        return out

    def parts(self, feats: list[np.ndarray]) -> np.ndarray:
        """[N, K] each component's min-over-rows Mahalanobis distance divided by its scale."""
        cols = []
        for c, f in zip(self.components, feats):
            d = np.stack([(((f - mu) @ c["U"].T) ** 2).sum(1) for mu in c["means"]], 1)
            cols.append(np.sqrt(d).min(1) / c["scale"])
        return np.stack(cols, 1)

    def scores(self, att: np.ndarray | None, x: np.ndarray | None) -> np.ndarray:
        """[N] combined scores (flagged when > self.threshold)."""
        return combine(self.parts(self.features(att, x)), self.p)
