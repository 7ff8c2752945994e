"""Classifier v2 levers of train-classifier: the CNN (ResNet) model, knowledge distillation from a teacher checkpoint,
temperature scaling baked into the final layer, and resuming an interrupted run. Real code on a few real images."""

import json
import math

import numpy as np
import pytest
import torch

from cxr_export.cli import main
from cxr_export.train_classifier import bake_temperature, distillation_loss, fit_temperature, resume_path

TINY_VIT = ["--image-size", "32", "--patch-size", "8", "--hidden", "32", "--layers", "2", "--heads", "2", "--mlp", "64"]
TINY_CNN = ["--model", "resnet", "--image-size", "32", "--resnet-widths", "8,16", "--resnet-depths", "1,1"]
COMMON = ["--batch-size", "8", "--lr", "2e-3", "--warmup-steps", "2", "--val-frac", "0.25", "--ema", "0.9"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, kermany_dir):
    root = tmp_path_factory.mktemp("data")
    for label in ("NORMAL", "PNEUMONIA"):
        for split, n in (("train", 12), ("test", 3)):
            d = root / split / label
            d.mkdir(parents=True)
            for f in sorted((kermany_dir / split / label).iterdir())[:n]:
                (d / f.name).symlink_to(f)
    return root


def test_fit_temperature_recovers_the_temperature_of_the_data():
    # Labels drawn from softmax(z / 2.5): the NLL-optimal temperature for logits z is 2.5 (up to sampling noise).
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, size=(20000, 2))
    p = np.exp(z / 2.5) / np.exp(z / 2.5).sum(1, keepdims=True)
    y = (rng.random(20000) < p[:, 1]).astype(np.int64)
    assert fit_temperature(z, y) == pytest.approx(2.5, rel=0.05)


def test_bake_temperature_divides_the_logits():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 2))
    x = torch.randn(4, 5)
    before = model(x).detach()
    bake_temperature(model, 1.7)
    assert torch.allclose(model(x), before / 1.7, atol=1e-6)


def test_distillation_loss_terms():
    torch.manual_seed(0)
    s, t = torch.randn(6, 2), torch.randn(6, 2)
    y = torch.tensor([0, 1, 1, 0, 1, 0])
    ce = torch.nn.CrossEntropyLoss()
    assert torch.allclose(distillation_loss(s, t, y, ce, 0.0, 2.0, "soft"), ce(s, y))
    # soft term: zero when the student equals the teacher, tau^2 * KL otherwise
    assert float(distillation_loss(s, s, y, ce, 1.0, 2.0, "soft")) == pytest.approx(0.0, abs=1e-6)
    kl = (torch.softmax(t / 2, -1) * (torch.log_softmax(t / 2, -1) - torch.log_softmax(s / 2, -1))).sum(-1).mean()
    assert float(distillation_loss(s, t, y, ce, 1.0, 2.0, "soft")) == pytest.approx(4 * float(kl), rel=1e-5)
    hard = torch.nn.functional.cross_entropy(s, t.argmax(-1))
    assert float(distillation_loss(s, t, y, ce, 0.5, 2.0, "hard")) == pytest.approx(
        0.5 * float(ce(s, y)) + 0.5 * float(hard), rel=1e-6)


def test_cnn_teacher_then_distilled_calibrated_vit(data_root, tmp_path, capsys):
    teacher = tmp_path / "teacher"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(teacher), "--epochs", "3",
                 *COMMON, *TINY_CNN, "--report-test"]) == 0
    ts = json.loads((teacher / "summary.json").read_text())
    assert ts["arch"]["model"] == "resnet" and ts["arch"]["widths"] == [8, 16]
    # the reference row: test metrics of the chosen checkpoint at the val threshold, 3 + 3 test images
    tm = ts["test_metrics"]
    assert tm["tp"] + tm["tn"] + tm["fp"] + tm["fn"] == 6 and 0.0 <= tm["auc"] <= 1.0

    student = tmp_path / "student"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(student), "--epochs", "3", *COMMON,
                 *TINY_VIT, "--teacher", str(teacher / "checkpoint"), "--distill", "soft", "--distill-alpha", "0.7",
                 "--temperature-scaling"]) == 0
    ss = json.loads((student / "summary.json").read_text())
    assert "soft distillation" in ss["loss"]
    cal = ss["calibration"]
    assert cal["temperature"] > 0 and math.isfinite(cal["val_ece_after"])
    assert ss["val_metrics"]["ece_15"] == pytest.approx(cal["val_ece_after"])
    assert not resume_path(student).exists()
    # a teacher trained on another validation split has seen this run's validation images: refused
    assert main(["train-classifier", "--data", str(data_root), "--out", str(tmp_path / "s2"), "--epochs", "1",
                 *COMMON, *TINY_VIT, "--teacher", str(teacher / "checkpoint"), "--seed", "1"]) != 0
    assert "another validation split" in capsys.readouterr().err


def test_teacher_with_other_labels_is_refused(data_root, tmp_path, capsys):
    from transformers import ResNetConfig, ResNetForImageClassification

    bad = tmp_path / "bad"
    ResNetForImageClassification(ResNetConfig(hidden_sizes=[8], depths=[1], embedding_size=8, num_labels=3)) \
        .save_pretrained(bad)
    rc = main(["train-classifier", "--data", str(data_root), "--out", str(tmp_path / "s"), "--epochs", "1", *COMMON,
               *TINY_VIT, "--teacher", str(bad)])
    assert rc != 0
    assert "labels" in capsys.readouterr().err


def test_an_interrupted_run_resumes_to_the_same_model(data_root, tmp_path):
    """--max-minutes 0 stops after each epoch (exit 3, resume state kept); repeating the command resumes. Three calls
    must give the same weights and log as one uninterrupted call."""
    args = ["train-classifier", "--data", str(data_root), "--epochs", "3", *COMMON, *TINY_VIT]
    whole = tmp_path / "whole"
    assert main([*args, "--out", str(whole)]) == 0
    parts = tmp_path / "parts"
    for _ in range(2):
        with pytest.raises(SystemExit) as stop:
            main([*args, "--out", str(parts), "--max-minutes", "0"])
        assert stop.value.code == 3 and resume_path(parts).exists() and not parts.exists()
    assert main([*args, "--out", str(parts), "--max-minutes", "0"]) == 0
    assert not resume_path(parts).exists()
    a = json.loads((whole / "summary.json").read_text())
    b = json.loads((parts / "summary.json").read_text())
    assert b["resumed"] and not a["resumed"]
    assert (a["best_epoch"], a["steps"], a["threshold"]) == (b["best_epoch"], b["steps"], b["threshold"])
    la = [json.loads(x)["train_loss"] for x in (whole / "log.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["train_loss"] for x in (parts / "log.jsonl").read_text().splitlines()]
    assert la == pytest.approx(lb, rel=1e-6, abs=1e-7)
    from safetensors.torch import load_file

    wa, wb = load_file(whole / "checkpoint" / "model.safetensors"), load_file(parts / "checkpoint" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    # a resume state from other arguments is refused with the names of what differs
    with pytest.raises(SystemExit):
        main([*args, "--out", str(tmp_path / "x"), "--max-minutes", "0"])
    assert main([*args, "--out", str(tmp_path / "x"), "--lr", "1e-3"]) != 0


def test_init_from_an_exported_onnx_starts_from_its_weights(data_root, tmp_path):
    """--init-from model.onnx: the ViT is rebuilt from the graph (recover, parity-checked) and training starts from
    it, so a run with lr 0 leaves those weights in place: its export equals the graph it started from."""
    first = tmp_path / "first"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(first), "--epochs", "1", *COMMON,
                 *TINY_VIT]) == 0
    models = tmp_path / "models"
    assert main(["classifier", "--checkpoint", str(first / "checkpoint"), "--out-dir", str(models), "--id", "t"]) == 0
    onnx_path = models / "t" / "model.onnx"
    again = tmp_path / "again"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(again), "--epochs", "1", *COMMON,
                 *TINY_VIT, "--lr", "0", "--ema", "0", "--init-from", str(onnx_path)]) == 0
    assert "rebuilt from the graph" in json.loads((again / "summary.json").read_text())["init_from"]
    from safetensors.torch import load_file

    wa, wb = load_file(first / "checkpoint" / "model.safetensors"), load_file(again / "checkpoint" / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    # an architecture that does not match is refused with the reason
    assert main(["train-classifier", "--data", str(data_root), "--out", str(tmp_path / "x"), "--epochs", "1",
                 *COMMON, *TINY_VIT, "--hidden", "64", "--init-from", str(onnx_path)]) != 0
