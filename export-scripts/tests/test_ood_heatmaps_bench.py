"""ood.py, heatmaps.py, recover.py and bench.py: the maths against closed forms, the rebuilt module against ONNX
Runtime, and the bench's native side on the tiny classifier fixture."""

import json

import numpy as np
import pytest

from cxr_export import ood as O
from cxr_export.heatmaps import occlusion_reference, rollout_reference
from cxr_export.recover import arch_of, checked_vit_from_onnx


def test_mahalanobis_matches_closed_form():
    rng = np.random.default_rng(0)
    cov = np.array([[2.0, 0.5], [0.5, 1.0]])
    a = rng.multivariate_normal([0, 0], cov, 4000)
    b = rng.multivariate_normal([5, 0], cov, 4000)
    x, y = np.concatenate([a, b]), np.r_[np.zeros(4000, int), np.ones(4000, int)]
    means, prec = O.fit(x, y, 2, shrinkage=0.0)
    assert np.allclose(means, [[0, 0], [5, 0]], atol=0.1)
    assert np.allclose(np.linalg.inv(prec), cov, atol=0.1)
    q = np.array([[0.0, 3.0]])
    want = np.sqrt(q @ np.linalg.inv(cov) @ q.T)[0, 0]  # nearest mean is class 0
    assert O.score(q, np.array([[0.0, 0], [5, 0]]), np.linalg.inv(cov))[0] == pytest.approx(want)


def test_cholesky_roundtrip_gives_the_same_scores():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 6))
    means, prec = O.fit(x, np.arange(500) % 2, 2)
    doc = {"means": means.tolist(), "cholesky": O.encode_cholesky(prec)}
    q = rng.standard_normal((20, 6)) * 3
    assert np.allclose(O.score_doc(q, doc), O.score(q, means, prec), rtol=1e-5)


def test_threshold_rule_and_cross_validation():
    rng = np.random.default_rng(2)
    ind, ood = rng.normal(0, 1, 500), rng.normal(4, 1, 200)
    t = O.choose_threshold(ind, ood)
    assert np.mean(ind > t) <= O.MAX_VAL_FLAG
    assert np.mean(ood > t) > 0.9
    cv = O.cross_validate(ind, ood, np.array(["adult"] * 200), 5, 0)
    assert len(cv["thresholds"]) == 5 and cv["adult_n"] == 200
    assert 0.85 < cv["adult_flagged"] <= 1.0 and cv["val_flagged"] <= 0.08
    f = O.folds_of(10, 5, 0)
    assert sorted(np.bincount(f).tolist()) == [2] * 5


def test_attention_features_closed_form():
    b, L, H, T = 2, 3, 2, 5
    att = np.full((b, L, H, T, T), 1.0 / T)
    f = O.attention_features(att)
    assert f.shape == (b, 2 * L * T)
    assert np.allclose(f[:, : L * T], np.log(T), atol=1e-6)
    assert np.allclose(f[:, L * T:], np.log(1.0 / T + O.RECEIVED_EPS))


def test_synthetic_images_are_seeded_and_varied():
    a, b = O.synthetic_images(2, seed=3), O.synthetic_images(2, seed=3)
    assert len(a) == 2 * len(O.SYNTHETIC_KINDS)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert all(im.dtype == np.uint8 and im.ndim == 3 and im.shape[2] == 3 for _, im in a)


def test_rollout_reference_identity_and_uniform():
    T = 5
    eye = np.tile(np.eye(T), (2, 1, 1, 1))  # attention to self only: rollout keeps CLS on CLS, patches get 0
    assert np.allclose(rollout_reference(eye), 0)
    uni = np.full((2, 1, T, T), 1.0 / T)
    assert np.allclose(rollout_reference(uni), 1.0)


def test_rebuilt_tiny_classifier_and_occlusion(repo_root):
    import torch

    manifest = json.loads((repo_root / "public/models/manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["id"] == "tiny-vit-classifier")
    model, diff = checked_vit_from_onnx(repo_root / "public/models/tiny-vit-classifier/model.onnx", arch_of(entry))
    assert diff < 1e-5
    x = np.random.default_rng(0).standard_normal((3, 32, 32)).astype(np.float32)
    occ = occlusion_reference(model, x, window=8)
    assert (occ["grid_w"], occ["grid_h"]) == (4, 4) and occ["drop"].shape == (16,)
    # the same cell by hand
    z = torch.from_numpy(x.copy())[None]
    z[:, :, 8:16, 0:8] = 0
    with torch.no_grad():
        p = model(pixel_values=z).logits.double().softmax(-1)[0, occ["target"]]
    # occlusion_reference runs the 16 occluded images as one batch; float32 kernels are not batch-invariant
    # (oneDNN picks them by shape), so the by-hand single image agrees to float32 rounding, not bit for bit
    assert occ["drop"][4] == pytest.approx(occ["base"] - float(p), abs=1e-6)


def test_bench_child_on_the_tiny_fixture(repo_root, tmp_path):
    from cxr_export.bench import child, write_feeds

    manifest = json.loads((repo_root / "public/models/manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["id"] == "tiny-vit-classifier")
    g = {"key": "tiny/fp32/model", "model": "tiny-vit-classifier", "family": "classifier", "dtype": "fp32",
         "role": "model", "path": str(repo_root / "public/models/tiny-vit-classifier/model.onnx"), "app_batch": 4,
         "entry": entry}
    idx = write_feeds({"graphs": [g]}, tmp_path)
    assert set(idx["tiny/fp32/model"]) == {"1", "4"}
    for backend in ("ort", "torch"):
        r = child(g, idx, backend, threads=1, warm=3, batch_iters=2)
        assert r["warm_p50_ms"] > 0 and r["throughput"]["4"] > 0 and r["peak_rss_mib"] > 0
    assert r["parity_vs_onnxruntime"] < 1e-4
