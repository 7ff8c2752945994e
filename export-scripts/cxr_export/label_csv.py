"""labeled_dataset.csv, its sidecar and the metrics report of `cxr-export label`, byte for byte as `npm run label`
writes them for the same rows:

- CSV dialect: app/lib/util/csv.ts: RFC 4180 quoting, CRLF, numbers rounded to 6 decimals and printed as JavaScript
  prints them (String(Math.round(x * 1e6) / 1e6)), '' for NaN/null, booleans true/false, and OWASP's CSV-injection
  defence: a TEXT cell starting with = + - @ TAB CR or ' gets a leading apostrophe and is quoted.
- Columns and rows: app/lib/batch/csv.ts and rows.ts batchLabeledRows (every classifier value at ONE threshold; the
  zero-shot label as auto_label when a CLIP model labelled the row; zs_<LABEL> columns last).
- Metrics: app/lib/batch/summary.ts batchReport, with app/lib/metrics/binary.ts (Mann-Whitney AUC with average ranks,
  15-bin ECE on P(positive) and top-label ECE) and app/lib/embeddings/knn.ts precision@5 (cosine, self excluded).
A row is a dict: index, image_id, ground_truth, status ('done'|'error'), error, classifier_probability,
classifier_probabilities, classifier_embedding, ood_score, ood, ood_threshold, auto_label, auto_confidence,
zero_shot {label: p}, clip_embedding.
"""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import numpy as np

COLUMNS = ["image_id", "auto_label", "ground_truth", "confidence_score", "classifier_prediction",
           "classifier_probability", "ood_score", "ood"]
_FORMULA = re.compile(r"^[=+\-@\t\r']")


def js_number(x: float) -> str:
    """csv.ts formatNumber: String(Math.round(x * 1e6) / 1e6) in JavaScript's number-to-string (shortest round
    trip, no exponent between 1e-7 and 1e21); '' for NaN and infinities."""
    if x is None or not math.isfinite(x):
        return ""
    v = math.floor(x * 1e6 + 0.5) / 1e6  # Math.round: halves toward +inf
    if v == 0:
        return "0"
    if v == int(v) and abs(v) < 1e21:
        return str(int(v))
    r = repr(v)
    if "e" in r and abs(v) < 1:  # Python switches to exponents below 1e-4, JavaScript below 1e-6 (and both at 1e21)
        mant, exp = r.split("e")
        digits = mant.replace("-", "").replace(".", "")
        e = int(exp)
        r = ("-" if v < 0 else "") + ("0." + "0" * (-e - 1) + digits if e < 0 else digits + "0" * (e - len(digits) + 1))
    return r


def neutralise(s: str) -> str:
    return "'" + s if _FORMULA.match(s) else s


def csv_cell(v) -> str:
    """csv.ts csvCell."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, np.floating, np.integer)):
        return js_number(float(v))
    raw = str(v)
    s = neutralise(raw)
    return f'"{s.replace(chr(34), chr(34) * 2)}"' if s != raw or re.search(r'[",\r\n]', s) else s


def csv_line(cells) -> str:
    return ",".join(csv_cell(c) for c in cells)


def header(zs_labels: list[str]) -> list[str]:
    return COLUMNS + [f"zs_{lab}" for lab in zs_labels]


def predict_at(r: dict, threshold: float, lab: dict) -> str | None:
    """rows.ts predictAt: binary P(positive) >= threshold, multi-class argmax."""
    if lab.get("positive") is not None:
        p = r.get("classifier_probability")
        if p is None or math.isnan(p):
            return None
        return lab["positive"] if p >= threshold else lab["negative"]
    ps = r.get("classifier_probabilities")
    return lab["labels"][int(np.argmax(ps))] if ps else None


def confidence_at(r: dict, threshold: float, lab: dict) -> float | None:
    label = predict_at(r, threshold, lab)
    if label is None:
        return None
    if lab.get("positive") is not None:
        return r["classifier_probability"] if label == lab["positive"] else 1 - r["classifier_probability"]
    return r["classifier_probabilities"][lab["labels"].index(label)]


def batch_labels(labels: list[str] | None) -> dict:
    """rows.ts batchLabels."""
    from .label_models import positive_index

    lab = labels or ["NORMAL", "PNEUMONIA"]
    if len(lab) != 2:
        return {"labels": lab}
    pos = positive_index(lab)
    return {"labels": lab, "positive": lab[pos], "negative": lab[1 - pos]}


def row_cells(r: dict, threshold: float, lab: dict, zs_labels: list[str]) -> list:
    """One finished row's cells (rows.ts batchLabeledRows + csv.ts labeledDatasetCells)."""
    pred = predict_at(r, threshold, lab) or ""
    zero_shot = r.get("auto_label") is not None
    conf = r.get("auto_confidence") if zero_shot else confidence_at(r, threshold, lab)
    prob = r.get("classifier_probability") if lab.get("positive") is not None else confidence_at(r, threshold, lab)
    nan = float("nan")
    zs = r.get("zero_shot") or {}
    return [r["image_id"], r["auto_label"] if zero_shot else pred, r.get("ground_truth") or "",
            nan if conf is None else conf, pred, nan if prob is None else prob, r.get("ood_score"), r.get("ood"),
            *[zs.get(z, "") for z in zs_labels]]


def csv_lines(rows: list[dict], threshold: float, lab: dict, zs_labels: list[str]) -> list[str]:
    return [csv_line(row_cells(r, threshold, lab, zs_labels)) for r in rows if r["status"] == "done"]


def to_csv(rows: list[dict], threshold: float, lab: dict, zs_labels: list[str]) -> str:
    """The whole labeled_dataset.csv (rows in index order)."""
    return "".join(x + "\r\n" for x in [csv_line(header(zs_labels)), *csv_lines(rows, threshold, lab, zs_labels)])


def metadata(rows: list[dict], ctx: dict) -> dict:
    """batch.ts batchCsvMetadata (csv.ts labeledDatasetMetadata), key order as JSON.stringify writes it."""
    binary = ctx["labels"].get("positive") is not None
    zero_shot = bool(ctx.get("clip")) and any(r.get("auto_label") is not None for r in rows)
    zs = ctx["zs_labels"] if zero_shot else []
    cls = ctx.get("classifier")
    return {
        "file": ctx.get("file", "labeled_dataset.csv"),
        "threshold": ctx["threshold"] if binary else None,
        "threshold_source": ctx["threshold_source"] if binary else "argmax (multi-class)",
        "positive_label": ctx["labels"].get("positive"),
        "labels": ctx["labels"]["labels"],
        "classifier": cls,
        "auto_label_source": f"zero-shot {ctx['clip']}" if zero_shot else f"classifier {cls['id']} at the threshold" if cls else "none",
        "n_rows": sum(r["status"] == "done" for r in rows),
        "zero_shot_labels": zs,
        "created": ctx.get("created") or datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "columns": header(zs),
        **(zero_shot_scoring(ctx.get("clip_config") or {}) if zs else {}),
    }


def zero_shot_scoring(cfg: dict) -> dict:
    """app/services/clip.ts zeroShotScoringMeta for a manifest CLIP entry's `config` (key order as it writes them):
    the scoring rule, exp(logit_scale) (default 100, CLIP's trained value), logit_bias and where they came from."""
    note = cfg.get("temperature_note")
    source = cfg.get("logit_scale_source")
    return {
        "zero_shot_scoring": cfg.get("scoring", "softmax"),
        "zero_shot_logit_scale": float(cfg.get("logit_scale", 100)),
        "zero_shot_logit_bias": float(cfg.get("logit_bias", 0)),
        "zero_shot_temperature_source": source if isinstance(source, str) else "manifest",
        **({"zero_shot_temperature_note": note} if isinstance(note, str) else {}),
    }


def _auc(y, s) -> float | None:
    """binary.ts rocAuc (Mann-Whitney U, average ranks for ties); None when one class is absent."""
    y, s = np.asarray(y), np.asarray(s, np.float64)
    order = np.argsort(s, kind="stable")
    ranks = np.empty(len(s))
    ss = s[order]
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and ss[j + 1] == ss[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    npos = int(y.sum())
    nneg = len(y) - npos
    if not npos or not nneg:
        return None
    return float((ranks[y == 1].sum() - npos * (npos + 1) / 2) / (npos * nneg))


def ece(y, p, bins: int = 15) -> float | None:
    """binary.ts expectedCalibrationError on P(positive): bins (k/B, (k+1)/B], 0 in the first."""
    y, p = np.asarray(y, np.float64), np.clip(np.asarray(p, np.float64), 0, 1)
    if not len(y):
        return None
    k = np.clip(np.ceil(p * bins) - 1, 0, bins - 1).astype(int)
    e = 0.0
    for b in range(bins):
        m = k == b
        if m.any():
            e += m.sum() / len(y) * abs(y[m].mean() - p[m].mean())
    return float(e)


def precision_at_5(rows: list[dict], key: str) -> float | None:
    """summary.ts embeddingPrecisionAt5 (knn.ts: float32 row normalisation, cosine, self excluded, ties by index)."""
    w = [r for r in rows if r["status"] == "done" and r.get("ground_truth") and r.get(key) is not None and len(r[key])]
    if len(w) < 2:
        return None
    D = len(w[0][key])
    w = [r for r in w if len(r[key]) == D]
    E = np.stack([np.asarray(r[key], np.float32) for r in w]).astype(np.float64)
    E = (E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-300)).astype(np.float32).astype(np.float64)
    S = E @ E.T
    np.fill_diagonal(S, -np.inf)
    lab = np.array([r["ground_truth"] for r in w])
    k = min(5, len(w) - 1)
    nn = np.argsort(-S, axis=1, kind="stable")[:, :k]
    return float((lab[nn] == lab[:, None]).mean(1).mean())


def report(rows: list[dict], threshold: float, lab: dict, zs_labels: list[str]) -> dict:
    """summary.ts batchReport (key order as there)."""
    done = [r for r in rows if r["status"] == "done"]
    binary = lab.get("positive") is not None
    ood_thr = next((r["ood_threshold"] for r in done if r.get("ood_threshold") is not None), None)
    out = {"n": len(done), "n_with_ground_truth": 0, "positive_label": lab.get("positive"),
           "threshold": threshold if binary else None, "accuracy": None, "precision": None, "recall": None,
           "specificity": None, "f1": None, "auc": None, "ece": None, "ece_top_label": None, "confusion": None,
           "macro_f1": None, "auto_label_accuracy": None, "zero_shot_labels": zs_labels, "zero_shot_accuracy": None,
           "zero_shot_auc": None, "precision_at_5": precision_at_5(rows, "classifier_embedding"),
           "clip_precision_at_5": precision_at_5(rows, "clip_embedding"), "ood_flagged": None,
           "ood_flagged_fraction": None, "ood_threshold": ood_thr}
    known = [r for r in done if r.get("ground_truth") in lab["labels"]]
    out["n_with_ground_truth"] = len(known)
    if binary:
        sc = [r for r in known if r.get("classifier_probability") is not None]
        if sc:
            y = np.array([r["ground_truth"] == lab["positive"] for r in sc], int)
            p = np.array([r["classifier_probability"] for r in sc])
            pred = p >= threshold
            tp, fp = int((pred & (y == 1)).sum()), int((pred & (y == 0)).sum())
            tn, fn = int((~pred & (y == 0)).sum()), int((~pred & (y == 1)).sum())
            ratio = lambda a, b: a / b if b else 0  # noqa: E731
            top = p >= 0.5
            out.update(accuracy=ratio(tp + tn, len(y)), precision=ratio(tp, tp + fp), recall=ratio(tp, tp + fn),
                       specificity=ratio(tn, tn + fp), f1=ratio(2 * tp, 2 * tp + fp + fn), auc=_auc(y, p), ece=ece(y, p),
                       ece_top_label=ece((top == (y == 1)).astype(int), np.where(top, p, 1 - p)),
                       confusion={"tp": tp, "fp": fp, "tn": tn, "fn": fn})
    else:
        sc = [r for r in known if len(r.get("classifier_probabilities") or []) == len(lab["labels"])]
        if sc:
            K = len(lab["labels"])
            conf = [[0] * K for _ in range(K)]
            for r in sc:
                conf[lab["labels"].index(r["ground_truth"])][lab["labels"].index(predict_at(r, threshold, lab))] += 1
            f1s = []
            for k in range(K):
                tp, sup, prd = conf[k][k], sum(conf[k]), sum(row[k] for row in conf)
                pr, rc = (tp / prd if prd else 0), (tp / sup if sup else 0)
                f1s.append(2 * pr * rc / (pr + rc) if pr + rc else 0)
            out.update(accuracy=sum(conf[k][k] for k in range(K)) / len(sc), confusion=conf, macro_f1=sum(f1s) / K)
    if known:
        out["auto_label_accuracy"] = sum((r.get("auto_label") or predict_at(r, threshold, lab)) == r["ground_truth"] for r in known) / len(known)
    zk = [r for r in done if r.get("zero_shot") and r.get("ground_truth") in zs_labels]
    if zk:
        out["zero_shot_accuracy"] = sum(r.get("auto_label") == r["ground_truth"] for r in zk) / len(zk)
        if len(zs_labels) == 2:
            from .label_models import positive_index

            pos = zs_labels[positive_index(zs_labels)]
            y = np.array([r["ground_truth"] == pos for r in zk], int)
            if len(set(y.tolist())) == 2:
                out["zero_shot_auc"] = _auc(y, [r["zero_shot"].get(pos, float("nan")) for r in zk])
    scored = [r for r in done if r.get("ood") is not None]
    if scored:
        out["ood_flagged"] = sum(bool(r["ood"]) for r in scored)
        out["ood_flagged_fraction"] = out["ood_flagged"] / len(scored)
    return out
