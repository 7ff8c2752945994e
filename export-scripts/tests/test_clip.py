"""cxr-export clip: tiny random BiomedCLIP (open_clip CustomTextCLIP) and a second CLIP, parity, tokenizer, errors."""

import json

import numpy as np
import pytest

from cxr_export.cli import main


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """tiny models: one thread is several times faster than two on a busy 2-core machine"""
    import torch

    torch.set_num_threads(1)
    yield


def _entry(models_dir, model_id):
    return next(e for e in json.loads((models_dir / "manifest.json").read_text())["models"] if e["id"] == model_id)


def test_biomedclip_tiny_export(tmp_path):
    from tokenizers import Tokenizer

    from cxr_export.clip import DEFAULT_PROMPTS, run_onnx

    out = tmp_path / "models"
    assert main(["clip", "--random-init", "--size", "tiny", "--out-dir", str(out), "--id", "bc"]) == 0
    e = _entry(out, "bc")
    assert e["family"] == "clip" and e["weights"] == "random-fixture"
    assert {f["role"] for f in e["variants"]["fp32"]["files"]} == {"image_encoder", "text_encoder", "tokenizer"}
    assert e["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    cfg = e["config"]
    assert cfg["default_prompts"] == DEFAULT_PROMPTS and cfg["tokenizer"] == "tokenizer.json"
    assert cfg["pad_token_id"] == 0 and cfg["context_length"] == 16
    assert cfg["logit_scale"] == pytest.approx(1 / 0.07, rel=1e-5)
    assert e["preprocessing"]["resize"] == "bicubic" and e["preprocessing"]["size"] == [32, 32]
    assert e["io"]["text_encoder"] == {"inputs": ["input_ids"], "outputs": ["text_embeds"]}

    tok = Tokenizer.from_file(str(out / "bc" / "tokenizer.json"))
    enc = tok.encode("a chest X-ray showing pneumonia")
    assert enc.ids[0] == tok.token_to_id("[CLS]") == 2 and len(enc.ids) == 16
    assert tok.token_to_id("[PAD]") == 0 and tok.token_to_id("[UNK]") == 1 and 1 not in enc.ids
    assert enc.tokens[1:8] == ["a", "chest", "x", "-", "ray", "showing", "pneumonia"]
    ids = np.array([enc.ids], np.int64)
    short = run_onnx(out / "bc" / "text_encoder.onnx", {"input_ids": ids})["text_embeds"]
    assert short.shape == (1, cfg["embed_dim"]) and np.abs(short).max() > 1e-3
    img = run_onnx(out / "bc" / "image_encoder.onnx", {"pixel_values": np.zeros((3, 3, 32, 32), np.float32)})
    assert img["image_embeds"].shape == (3, cfg["embed_dim"])


def test_pad_id_masks_padding():
    import torch

    from cxr_export.clip import build_random_biomedclip

    model, tok, info = build_random_biomedclip("tiny", seed=1)
    ids = torch.tensor([[2, 40, 41, 3] + [0] * 12])
    with torch.no_grad():
        a = model.encode_text(ids)
        b = model.text.transformer(input_ids=ids[:, :4]).last_hidden_state[:, 0]
        b = model.text.proj(b)
    assert torch.allclose(a, b, atol=1e-5)


def test_second_clip_open_clip_tiny(tmp_path):
    out = tmp_path / "models"
    assert main(["clip", "--random-init", "--size", "tiny", "--model", "ViT-B-32", "--out-dir", str(out),
                 "--id", "clip-tiny"]) == 0
    e = _entry(out, "clip-tiny")
    assert e["config"]["context_length"] == 77 and e["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "clip-tiny" / "tokenizer.json"))
    from open_clip.tokenizer import SimpleTokenizer

    text = "a normal chest X-ray, PA view"
    ref = SimpleTokenizer().encode(text)
    ids = tok.encode(text).ids
    assert ids[0] == 49406 and ids[1:1 + len(ref)] == ref and ids[1 + len(ref)] == 49407 and ids[-1] == 0


def test_second_clip_transformers_tiny(tmp_path, shared_dir):
    out = tmp_path / "models"
    assert main(["clip", "--random-init", "--size", "tiny", "--hf-clip", "--out-dir", str(out), "--id", "hf"]) == 0
    e = _entry(out, "hf")
    assert e["source"].startswith("random-init (tiny) transformers CLIPModel")
    assert e["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4 and e["config"]["pad_token_id"] == 49407


def test_wrong_checkpoint_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    out = tmp_path / "models"
    assert main(["clip", "--checkpoint", str(bad), "--out-dir", str(out)]) == 1
    assert "open_clip_config.json" in capsys.readouterr().err
    assert main(["clip", "--hf-clip", str(bad), "--out-dir", str(out)]) == 1
    assert "model_type 'bert'" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())
