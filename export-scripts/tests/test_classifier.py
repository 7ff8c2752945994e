import json

import numpy as np
import pytest

from cxr_export import classifier as C
from cxr_export import manifest as mf
from cxr_export.cli import main
from cxr_export.parity import run_onnx
from cxr_export.train_classifier import binary_metrics, roc_auc, youden_threshold

TINY = ["--image-size", "32", "--patch-size", "8", "--hidden", "32", "--layers", "2", "--heads", "2", "--mlp", "64"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, kermany_dir):
    """A few optimizer steps of the real training code on 12+12 real images (32 px, 2-layer ViT)."""
    root = tmp_path_factory.mktemp("data")
    for label in ("NORMAL", "PNEUMONIA"):
        for split, n in (("train", 12), ("test", 3)):
            d = root / split / label
            d.mkdir(parents=True)
            for f in sorted((kermany_dir / split / label).iterdir())[:n]:
                (d / f.name).symlink_to(f)
    out = tmp_path_factory.mktemp("run") / "tiny"
    rc = main(["train-classifier", "--data", str(root), "--out", str(out), "--epochs", "8", "--batch-size", "8",
               "--lr", "2e-3", "--warmup-steps", "2", "--label-smoothing", "0", "--val-frac", "0.25",
               "--ema", "0.9", *TINY])
    assert rc == 0
    return root, out


def test_training_lowers_loss(tiny_run):
    _, out = tiny_run
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 8
    assert log[-1]["train_loss"] < log[0]["train_loss"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_train"] == 18 and summary["n_val"] == 6
    assert 0.0 <= summary["threshold"] <= 1.0
    assert (out / "checkpoint" / "config.json").is_file()
    assert (out / "checkpoint" / "preprocessor_config.json").is_file()


def test_export_trained_checkpoint_parity(tiny_run, tmp_path):
    root, out = tiny_run
    models = tmp_path / "models"
    assert main(["classifier", "--checkpoint", str(out / "checkpoint"), "--out-dir", str(models), "--id", "t"]) == 0
    entry = mf.load(models)["models"][0]
    assert entry["family"] == "classifier" and entry["task"] == "image-classification"
    assert entry["weights"] == "trained" and entry["labels"] == ["NORMAL", "PNEUMONIA"]
    assert entry["preprocessing"] == {"size": [32, 32], "resize": "bilinear", "mean": [0.5] * 3, "std": [0.5] * 3,
                                      "layout": "NCHW"}
    assert entry["io"]["model"] == {"inputs": ["pixel_values"],
                                    "outputs": ["logits", "probabilities", "embedding", "attentions"]}
    assert entry["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    f = entry["variants"]["fp32"]["files"][0]
    assert f["path"] == "t/model.onnx" and f["bytes"] == (models / "t" / "model.onnx").stat().st_size
    # real images through the app preprocessing: ORT vs PyTorch, and output semantics
    import torch

    model, pre = C.load_model(out / "checkpoint")
    items = C.test_items(root, entry["labels"])
    x = np.stack([C.preprocess_file(root / p, entry["preprocessing"]) for p, _ in items])
    got = run_onnx(models / "t" / "model.onnx", {"pixel_values": x})
    with torch.no_grad():
        ref = model(pixel_values=torch.from_numpy(x), output_attentions=True)
    assert np.abs(got["logits"] - ref.logits.numpy()).max() <= 1e-4
    assert got["attentions"].shape == (6, 2, 2, 17, 17)
    assert np.allclose(got["attentions"].sum(-1), 1.0, atol=1e-5)
    assert np.allclose(got["probabilities"].sum(-1), 1.0, atol=1e-6)
    assert got["embedding"].shape == (6, 32)
    # goldens writer
    g = C.write_goldens(out / "checkpoint", root, tmp_path / "goldens", count=4)
    doc = json.loads(g.read_text())
    assert len(doc["images"]) == 4 and {i["label"] for i in doc["images"]} == {"NORMAL", "PNEUMONIA"}
    first = doc["images"][0]
    row = [p for p, _ in items].index(first["path"])
    assert np.allclose(first["logits"], got["logits"][row], atol=1e-4)
    # ORT evaluation on the tiny test folder
    m = C.evaluate(models / "t" / "model.onnx", root, entry["preprocessing"], entry["labels"], 0.5)
    assert m["n"] == 6 and m["tp"] + m["tn"] + m["fp"] + m["fn"] == 6


def test_random_init_export(tmp_path):
    models = tmp_path / "m"
    assert main(["classifier", "--random-init", "--size", "tiny", "--out-dir", str(models), "--id", "rnd"]) == 0
    entry = mf.load(models)["models"][0]
    assert entry["weights"] == "random-fixture"
    assert entry["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    assert not [p for p in models.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_not_a_vit_checkpoint_fails_cleanly(tmp_path, capsys):
    ck = tmp_path / "bert"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps({"model_type": "bert"}))
    models = tmp_path / "models"
    assert main(["classifier", "--checkpoint", str(ck), "--out-dir", str(models)]) == 1
    assert "expected 'vit'" in capsys.readouterr().err
    assert not models.exists()
    assert main(["classifier", "--checkpoint", str(tmp_path / "missing"), "--out-dir", str(models)]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert not models.exists()


def test_metrics_helpers():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.6, 0.4, 0.9])
    assert roc_auc(y, p) == 0.75
    assert roc_auc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    m = binary_metrics(y, p, 0.5)
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (1, 1, 1, 1) and m["accuracy"] == 0.5
    t = youden_threshold(np.array([0, 0, 1, 1]), np.array([0.1, 0.2, 0.8, 0.9]))
    assert 0.2 < t < 0.8


def test_publish_pipeline(tiny_run, tmp_path):
    """train-classifier run -> fp32 + int8 export, ORT test metrics on the card, goldens."""
    root, out = tiny_run
    models = tmp_path / "models"
    res = C.publish(out, models, "pv", root, goldens_dir=tmp_path / "g")
    entry = mf.load(models)["models"][0]
    assert set(entry["variants"]) == {"fp32", "int8"}
    card = entry["card"]
    assert card["metrics"]["dataset"] == C.TEST_DATASET and card["metrics"]["n"] == 6
    assert card["metrics"]["accuracy"] == res["fp32"]["accuracy"] and "int8_auc" in card["metrics"]
    assert card["training"]["epochs"] == 8 and card["threshold"] == card["metrics"]["threshold"]
    assert all(isinstance(v, (int, float, str)) for v in card["metrics"].values())
    doc = json.loads((tmp_path / "g" / "test-images.json").read_text())
    assert len(doc["images"]) == 6 and doc["preprocessing"] == entry["preprocessing"]


def test_goldens_only_cli(tiny_run, tmp_path):
    root, out = tiny_run
    g = tmp_path / "gold"
    assert main(["classifier", "--goldens-only", "--run-dir", str(out), "--evaluate-data", str(root),
                 "--goldens-dir", str(g), "--id", "x"]) == 0
    doc = json.loads((g / "test-images.json").read_text())
    assert doc["model"] == "x" and len(doc["images"]) == 6
