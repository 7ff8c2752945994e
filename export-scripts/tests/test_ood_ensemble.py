"""The OOD score v2 (ood.py, ood_score.py, ood_image_stats.py, ood_images.package_images): image-statistics features
against closed forms, the ensemble document scored by OodDoc against the parts computed by hand, and the shipped
pneumonia-vit statistics re-scored with ONNX Runtime on the held-out non-chest package images and on Kermany test."""

import json
from pathlib import Path

import numpy as np
import pytest

from cxr_export import ood as O
from cxr_export.ood_image_stats import feature_count, image_stats_features

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "public" / "models"
SHARED = ROOT.parent / "shared"


def _input(grey: np.ndarray, tint: float = 0.0) -> np.ndarray:
    """[1,3,H,W] model input (mean 0.5, std 0.5) of a grey image in [0,1], red +tint, blue -tint."""
    rgb = np.stack([grey + tint, grey, grey - tint])
    return ((rgb - 0.5) / 0.5)[None].astype(np.float32)


def test_image_stats_flat_and_halves_closed_form():
    f = image_stats_features(_input(np.full((8, 8), 0.3)), [0.5] * 3, [0.5] * 3, grid=2, bins=4)[0]
    assert f.shape == (feature_count(2, 4),)
    assert np.allclose(f[:4], 0) and np.allclose(f[4:8], np.log(1e-3))
    assert np.allclose(f[8:12], [0, 1, 0, 0])  # 0.3 * 4 = 1.2 -> bin 1
    assert f[13] == pytest.approx(0.3, abs=1e-6)
    halves = np.zeros((8, 8))
    halves[4:] = 1
    g = image_stats_features(_input(halves), [0.5] * 3, [0.5] * 3, grid=2, bins=4)[0]
    z = 0.5 / (0.5 + 1e-3)
    assert np.allclose(g[:4], [-z, -z, z, z], atol=1e-6)
    assert np.allclose(g[8:12], [np.sqrt(0.5), 0, 0, np.sqrt(0.5)])
    assert g[14] == pytest.approx(np.log(0.5 + 1e-3), abs=1e-6)
    t = image_stats_features(_input(np.full((8, 8), 0.5), tint=0.2), [0.5] * 3, [0.5] * 3, grid=2, bins=4)[0]
    assert t[12] == pytest.approx(np.log(0.4 / 3 + 1e-3), abs=1e-5)
    with pytest.raises(O.ExportError, match="multiple of the 3x3 grid"):
        image_stats_features(_input(np.zeros((10, 10))), [0.5] * 3, [0.5] * 3, grid=3)


def test_ood_doc_scores_the_ensemble_as_the_parts_combined():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((400, 6)), rng.standard_normal((400, 4)) * 2
    y = np.arange(400) % 2
    ma, pa = O.fit(a, y, 2)
    mb, pb = O.fit(b, np.zeros_like(y), 1)
    comp = lambda m, p, s, kind: {"name": kind, "features": {"kind": kind}, "means": m.tolist(),
                                  "cholesky": O.encode_cholesky(p), "scale": s}
    doc = {"method": "mahalanobis-ensemble", "classes": ["A", "B"], "threshold": 1.5, "combine": {"p": 2.0},
           "components": [comp(ma, pa, 2.0, "x"), comp(mb, pb, 3.0, "y")]}
    od = O.OodDoc(doc)
    qa, qb = rng.standard_normal((20, 6)) * 2, rng.standard_normal((20, 4)) * 3
    want = np.sqrt((O.score(qa, ma, pa) / 2.0) ** 2 + (O.score(qb, mb, pb) / 3.0) ** 2)
    assert np.allclose(O.combine(od.parts([qa, qb]), od.p), want, rtol=1e-5)
    v1 = O.OodDoc({"method": "mahalanobis-tied", "classes": ["A", "B"], "threshold": 3.0, "means": ma.tolist(),
                   "cholesky": O.encode_cholesky(pa), "features": {"kind": "attention-entropy+received"}})
    assert np.isinf(v1.p) and np.allclose(O.combine(v1.parts([qa]), v1.p), O.score(qa, ma, pa), rtol=1e-5)
    with pytest.raises(O.ExportError, match="method must be"):
        O.OodDoc({"method": "energy", "threshold": 1})


def test_package_images_load_offline_with_source_and_licence():
    imgs = O.package_images()
    assert len(imgs) == len(O.SKIMAGE_IMAGES) + len(O.PYDICOM_IMAGES)
    assert len({n for n, *_ in imgs}) == len(imgs)
    for name, a, source, licence in imgs:
        assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and min(a.shape[:2]) >= 32, name
        assert source and licence, name


def _shipped(dtype="fp32"):
    manifest = json.loads((MODELS / "manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["id"] == "pneumonia-vit")
    files = {f["role"]: f["path"] for f in entry["variants"][dtype]["files"]}
    return entry, MODELS / files["model"], json.loads((MODELS / files["ood"]).read_text())


def _scores(graph, doc, inputs):
    from cxr_export.parity import run_onnx

    od = O.OodDoc(doc)
    out = []
    for i in range(0, len(inputs), 32):
        x = np.stack(inputs[i:i + 32])
        r = run_onnx(graph, {"pixel_values": x}, outputs=["attentions"], threads=2)
        out.append(od.scores(r["attentions"], x))
    return np.concatenate(out)


def test_shipped_statistics_flag_every_non_chest_package_image_far_above_the_threshold():
    entry, graph, doc = _shipped()
    assert doc["method"] == "mahalanobis-ensemble"
    imgs = O.package_images()
    s = _scores(graph, doc, [O.normalize(a, entry["preprocessing"]) for _, a, _, _ in imgs])
    ratio = s / doc["threshold"]
    assert ratio.min() > 1.3, {n: round(float(r), 2) for (n, *_), r in zip(imgs, ratio)}


@pytest.mark.skipif(not (SHARED / "data" / "kermany-cxr-224" / "test").is_dir() or
                    not (SHARED / "data" / "dicom").is_dir(), reason="needs ../shared/data (kermany-cxr-224, dicom)")
def test_shipped_statistics_on_kermany_test_and_the_non_chest_dicom():
    from cxr_export import data as D
    from cxr_export.images import preprocess_file

    entry, graph, doc = _shipped()
    prep = entry["preprocessing"]
    test = D.kermany_split(SHARED / "data" / "kermany-cxr-224", "test")
    s = _scores(graph, doc, [preprocess_file(p, prep) for p, _ in test])
    assert len(s) == 624 and np.mean(s > doc["threshold"]) <= 0.05
    ot = _scores(graph, doc, [O.normalize(O.dicom_rgb(SHARED / "data" / "dicom" / "non_cxr_control_OT_512.dcm"), prep)])
    assert ot[0] > 1.3 * doc["threshold"] and ot[0] > s.max()
