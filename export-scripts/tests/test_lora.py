"""cxr-export lora: LoRA on the tiny SD UNet learns from real X-rays (loss goes down), adapter files, errors."""

import json

import pytest

from cxr_export.cli import main
from cxr_export.errors import ExportError


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """tiny models: one thread is several times faster than two on a busy 2-core machine"""
    import torch

    torch.set_num_threads(1)
    yield


@pytest.fixture()
def xray_captions(kermany_dir, tmp_path):
    """metadata.jsonl of 16 real Kermany images (absolute paths, nothing copied), captions from folder names."""
    root = tmp_path / "data"
    root.mkdir()
    rows = []
    for label, text in (("NORMAL", "a normal chest X-ray"), ("PNEUMONIA", "a chest X-ray showing pneumonia")):
        for f in sorted((kermany_dir / "train" / label).iterdir())[:8]:
            rows.append({"file_name": str(f), "text": text})
    (root / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return root


def test_lora_training_lowers_loss(xray_captions, tmp_path):
    out = tmp_path / "adapter"
    assert main(["lora", "--data", str(xray_captions), "--out", str(out), "--random-init", "--size", "tiny",
                 "--steps", "50", "--lr", "1e-2", "--batch-size", "4", "--resolution", "32", "--rank", "4",
                 "--seed", "0", "--log-every", "0"]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert len(log) == 50 and [r["step"] for r in log] == list(range(1, 51))
    first10 = sum(r["loss"] for r in log[:10]) / 10
    last10 = sum(r["loss"] for r in log[-10:]) / 10
    assert summary["start_loss"] == pytest.approx(first10) and summary["end_loss"] == pytest.approx(last10)
    assert last10 < first10 * 0.95, (first10, last10)
    assert summary["images"] == 16 and summary["target_modules"] == ["to_q", "to_k", "to_v", "to_out.0"]
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert cfg["r"] == 4 and set(cfg["target_modules"]) == {"to_q", "to_k", "to_v", "to_out.0"}
    from safetensors.torch import load_file

    weights = load_file(str(out / "adapter_model.safetensors"))
    assert weights and all("lora_A" in k or "lora_B" in k for k in weights)
    assert any(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)  # B starts at 0: it trained


def test_bad_data_fails_cleanly(tmp_path, capsys):
    (tmp_path / "d").mkdir()
    out = tmp_path / "adapter"
    assert main(["lora", "--data", str(tmp_path / "d"), "--out", str(out), "--random-init", "--size", "tiny"]) == 1
    assert "metadata.jsonl" in capsys.readouterr().err
    (tmp_path / "d" / "metadata.jsonl").write_text(json.dumps({"file_name": "missing.png", "text": "x"}) + "\n")
    from cxr_export.lora import train_lora

    with pytest.raises(ExportError, match="not found"):
        train_lora(tmp_path / "d", out, steps=1)
    assert not out.exists()
