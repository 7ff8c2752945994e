"""Classifier v3's hybrid ViT (vit.py: a ResNet stem in place of the patch projection, initialised from a CNN
teacher's backbone): training with --conv-stem resnet --stem-init, export with the stem's BatchNorms folded, the
PyTorch module rebuilt from the graph (recover.py), fp16, and the app's graph contract (50-token attentions at
224 px). Real code on a few real Kermany images; references are the unfused PyTorch module and ONNX Runtime."""

import json

import numpy as np
import pytest
import torch

from cxr_export.cli import main

# 64 px with a stride-32 ResNet stem: a 2x2 token grid (+ CLS = 5 tokens), like 7x7 (+1 = 50) at 224 px.
TINY_STEM = ["--resnet-widths", "8,8,16,16", "--resnet-depths", "1,1,1,1"]
TINY_HYBRID = ["--image-size", "64", "--patch-size", "32", "--hidden", "32", "--layers", "2", "--heads", "2",
               "--mlp", "64", "--conv-stem", "resnet", *TINY_STEM]
COMMON = ["--batch-size", "8", "--lr", "2e-3", "--warmup-steps", "2", "--val-frac", "0.25", "--ema", "0.9"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, kermany_dir):
    root = tmp_path_factory.mktemp("data")
    for label in ("NORMAL", "PNEUMONIA"):
        for split, n in (("train", 10), ("test", 3)):
            d = root / split / label
            d.mkdir(parents=True)
            for f in sorted((kermany_dir / split / label).iterdir())[:n]:
                (d / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="module")
def runs(data_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs")
    teacher = tmp / "teacher"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(teacher), "--epochs", "1", *COMMON,
                 "--model", "resnet", "--image-size", "64", *TINY_STEM]) == 0
    hybrid = tmp / "hybrid"
    # lr 0: the stem's convolutions must stay the teacher's (BatchNorm statistics still move in train mode)
    assert main(["train-classifier", "--data", str(data_root), "--out", str(hybrid), "--epochs", "1", *COMMON,
                 *TINY_HYBRID, "--lr", "0", "--stem-init", str(teacher / "checkpoint"), "--teacher",
                 str(teacher / "checkpoint"), "--distill", "soft", "--temperature-scaling"]) == 0
    return teacher, hybrid


def test_stem_starts_from_the_teacher_backbone(runs):
    from safetensors.torch import load_file

    from cxr_export.vit import load_vit

    teacher, hybrid = runs
    s = json.loads((hybrid / "summary.json").read_text())
    assert s["arch"]["conv_stem"] == {"type": "resnet", "widths": [8, 8, 16, 16], "depths": [1, 1, 1, 1]}
    assert "stem:" in s["init_from"] and "ResNet backbone" in s["init_from"]
    model = load_vit(hybrid / "checkpoint")
    t = load_file(str(teacher / "checkpoint" / "model.safetensors"))
    stem = model.vit.embeddings.patch_embeddings.projection.resnet.state_dict()
    convs = [k for k in stem if k.endswith("convolution.weight")]
    assert len(convs) >= 9
    from transformers import ResNetForImageClassification

    tm = ResNetForImageClassification.from_pretrained(teacher / "checkpoint").resnet.state_dict()
    assert t and all(torch.equal(stem[k], tm[k]) for k in convs)
    # the token grid: [B, 4 + 1, hidden] for 64 px, attentions [B, heads, 5, 5] per layer
    with torch.no_grad():
        out = model(pixel_values=torch.zeros(1, 3, 64, 64), output_attentions=True)
    assert tuple(out.attentions[0].shape) == (1, 2, 5, 5)


def test_hybrid_export_recover_and_fp16(runs, tmp_path, data_root):
    from cxr_export.classifier import preprocess_file
    from cxr_export.parity import run_onnx
    from cxr_export.quantize import quantize
    from cxr_export.recover import arch_of, checked_vit_from_onnx
    from cxr_export.vit import load_vit

    _, hybrid = runs
    models = tmp_path / "models"
    assert main(["classifier", "--checkpoint", str(hybrid / "checkpoint"), "--out-dir", str(models), "--id", "h"]) == 0
    entry = json.loads((models / "manifest.json").read_text())["models"][0]
    assert entry["config"]["conv_stem"]["type"] == "resnet"
    assert entry["config"]["num_tokens"] == 5 and entry["config"]["attentions_shape"] == ["batch", 2, 2, 5, 5]
    assert entry["variants"]["fp32"]["parity"]["max_abs_diff"] < 1e-4
    # real images through the app's preprocessing: the graph vs the unfused PyTorch checkpoint (BatchNorm in eval)
    files = sorted((data_root / "test" / "PNEUMONIA").iterdir()) + sorted((data_root / "test" / "NORMAL").iterdir())
    x = np.stack([preprocess_file(f, entry["preprocessing"]) for f in files])
    ref = load_vit(hybrid / "checkpoint")
    with torch.no_grad():
        out = ref(pixel_values=torch.from_numpy(x), output_attentions=True)
    got = run_onnx(models / "h" / "model.onnx", {"pixel_values": x})
    np.testing.assert_allclose(got["logits"], out.logits.numpy(), atol=1e-4)
    np.testing.assert_allclose(got["attentions"], torch.stack(out.attentions, 1).numpy(), atol=1e-4)
    # recover.py rebuilds the (BatchNorm-folded) module from the graph alone, for the heatmap references
    arch = arch_of({**entry, "card": {"training": {"arch": json.loads((hybrid / "summary.json").read_text())["arch"]}}})
    rebuilt, diff = checked_vit_from_onnx(models / "h" / "model.onnx", arch, entry["labels"])
    assert diff < 1e-4
    with torch.no_grad():
        np.testing.assert_allclose(rebuilt(pixel_values=torch.from_numpy(x)).logits.numpy(), out.logits.numpy(),
                                   atol=1e-4)
    # fp16 (WebGPU with shader-f16): the converter handles the stem's convolutions; ORT runs it close to fp32
    quantize(models, "h", "fp16")
    got16 = run_onnx(models / "h" / "model.fp16.onnx", {"pixel_values": x})
    np.testing.assert_allclose(got16["probabilities"], got["probabilities"], atol=0.02)


def test_plain_onnx_initialises_the_hybrid_transformer(runs, data_root, tmp_path):
    """--init-from a plain ViT graph (how v3 starts from v2): everything but the patch projection is copied."""
    teacher, _ = runs
    plain = tmp_path / "plain"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(plain), "--epochs", "1", *COMMON,
                 "--image-size", "64", "--patch-size", "32", "--hidden", "32", "--layers", "2", "--heads", "2",
                 "--mlp", "64"]) == 0
    models = tmp_path / "models"
    assert main(["classifier", "--checkpoint", str(plain / "checkpoint"), "--out-dir", str(models), "--id", "p"]) == 0
    out = tmp_path / "h2"
    assert main(["train-classifier", "--data", str(data_root), "--out", str(out), "--epochs", "1", *COMMON,
                 *TINY_HYBRID, "--lr", "0", "--ema", "0", "--init-from", str(models / "p" / "model.onnx"),
                 "--stem-init", str(teacher / "checkpoint")]) == 0
    from safetensors.torch import load_file

    a, b = load_file(str(plain / "checkpoint" / "model.safetensors")), load_file(str(out / "checkpoint" /
                                                                                      "model.safetensors"))
    shared = [k for k in a if "patch_embeddings" not in k]
    assert len(shared) > 20 and all(torch.allclose(a[k], b[k], atol=1e-6) for k in shared if k in b)
    assert all(k in b for k in shared)
