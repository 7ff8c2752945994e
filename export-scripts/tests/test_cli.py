import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import EXPORT_SCRIPTS, REPO_ROOT, skip_or_fail


def test_help_lists_subcommands():
    res = subprocess.run([sys.executable, "-m", "cxr_export", "--help"], cwd=EXPORT_SCRIPTS, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    for name in ("data", "train-classifier", "classifier", "quantize"):
        assert name in res.stdout


def test_no_subcommand_prints_help(capsys):
    from cxr_export.cli import main

    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def _committed_entry():
    path = REPO_ROOT / "public" / "models" / "manifest.json"
    if not path.is_file():
        skip_or_fail("public/models/manifest.json is not there")
    entry = next((e for e in json.loads(path.read_text())["models"] if e["id"] == "pneumonia-vit"), None)
    if entry is None:
        skip_or_fail("no pneumonia-vit entry in public/models/manifest.json")
    if entry["weights"] != "trained" or "metrics" not in entry["card"]:
        skip_or_fail("pneumonia-vit is a provisional placeholder (no measured metrics in its card)")
    return entry


def test_committed_pneumonia_vit_reproduces_card_metrics(kermany_dir):
    """Real-metrics test: the committed model.onnx, run by onnxruntime on all 624 test images, gives the card's
    accuracy and AUC."""
    from cxr_export import classifier as C

    entry = _committed_entry()
    card = entry["card"]["metrics"]
    assert card["dataset"] == "kermany-cxr-224 test (624)"
    onnx_path = REPO_ROOT / "public" / "models" / "pneumonia-vit" / "model.onnx"
    m = C.evaluate(onnx_path, kermany_dir, entry["preprocessing"], entry["labels"], float(card["threshold"]))
    assert m["n"] == 624
    assert abs(m["accuracy"] - card["accuracy"]) <= 1e-6
    assert abs(m["auc"] - card["auc"]) <= 1e-6
    assert (m["tp"], m["tn"], m["fp"], m["fn"]) == (card["tp"], card["tn"], card["fp"], card["fn"])


def test_committed_goldens_match_committed_model(kermany_dir):
    """tests/goldens/pneumonia-vit/test-images.json agrees with the committed ONNX graph (fp32, ORT)."""
    from cxr_export import classifier as C
    from cxr_export.parity import run_onnx

    entry = _committed_entry()
    g = REPO_ROOT / "tests" / "goldens" / "pneumonia-vit" / "test-images.json"
    if not g.is_file():
        skip_or_fail(f"{g} is not there")
    doc = json.loads(g.read_text())
    imgs = doc["images"]
    assert len(imgs) >= 32 and doc["preprocessing"] == entry["preprocessing"]
    x = np.stack([C.preprocess_file(kermany_dir / i["path"], doc["preprocessing"]) for i in imgs])
    out = run_onnx(REPO_ROOT / "public" / "models" / "pneumonia-vit" / "model.onnx", {"pixel_values": x})
    assert np.abs(out["probabilities"] - np.array([i["probabilities"] for i in imgs])).max() <= 1e-4
