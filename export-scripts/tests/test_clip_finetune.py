"""clip-finetune (full / LoRA / QLoRA on cxr-clip): merge equals the unmerged model, the NF4 base is frozen and
really 4-bit, trainable-parameter counts, lung-sam's held-out images never used, resume after --max-minutes.
All on a tiny CxrClip stand-in (clip_model.build_cxr_clip with a small config) and a few real adult images."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")
pytest.importorskip("torchao")

from cxr_export import cli  # noqa: E402
from cxr_export.clip_finetune_data import adult_rows, task_split  # noqa: E402
from cxr_export.clip_finetune_peft import (count_parameters, lora_targets, merge, quantize_linears_nf4,  # noqa: E402
                                           setup_method, trainable_parameters)
from cxr_export.clip_model import (build_cxr_clip, load_cxr_clip, restrict_vocabulary, save_cxr_clip,  # noqa: E402
                                   tokenize)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data" / "cxr-lung-masks"
H = 64  # hidden sizes of the stand-in: multiples of 64 so that every Linear weight is NF4-quantizable
TINY = dict(vision=dict(image_size=32, patch_size=8, hidden_size=H, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * H),
            unlocked_blocks=1, head_hidden=H, embed_dim=H,
            text=dict(vocab_size=49408, hidden_size=H, intermediate_size=2 * H, num_hidden_layers=2,
                      num_attention_heads=2, max_position_embeddings=77))
needs_data = pytest.mark.skipif(not (DATA / "index.csv").exists(), reason="../shared/data/cxr-lung-masks absent")


def _inputs():
    g = torch.Generator().manual_seed(3)
    px = torch.randn(3, 3, 32, 32, generator=g)
    ids = torch.randint(0, 49406, (3, 12), generator=g)
    ids[:, 0], ids[:, -1] = 49406, 49407
    return px, ids


def _outputs(model, px, ids):
    with torch.no_grad():
        return model.encode_image(px).numpy(), model.encode_text(ids).numpy()


def _perturb_adapters(trainable):
    """LoRA starts with B = 0 (delta 0): give B random values so that the merge has something to add."""
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for n, p in trainable_parameters(trainable):
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_merged_equals_unmerged(method):
    base = build_cxr_clip(TINY)
    keys = {k: tuple(v.shape) for k, v in base.state_dict().items()}
    px, ids = _inputs()
    base_out = _outputs(base, px, ids)
    trainable, inner, _ = setup_method(base, method, r=4, alpha=8)
    _perturb_adapters(trainable)
    unmerged = _outputs(inner, px, ids)
    assert np.abs(unmerged[1] - base_out[1]).max() > 1e-3  # the adapters change the model
    merged = merge(trainable, method)
    out = _outputs(merged, px, ids)
    for a, b in zip(unmerged, out):
        assert np.abs(a - b).max() <= 1e-4
    # exportable as the base: same parameter names and shapes, plain fp32 tensors, reloadable
    sd = merged.state_dict()
    assert {k: tuple(v.shape) for k, v in sd.items()} == keys
    assert all(type(v) is torch.Tensor and v.dtype == torch.float32 for v in sd.values())


def test_qlora_base_is_frozen_nf4(tmp_path):
    from torchao.quantization import NF4Tensor

    ref = build_cxr_clip(TINY)
    trainable, inner, info = setup_method(build_cxr_clip(TINY), "qlora", r=4, alpha=8)
    assert info["nf4"]["kept_fp32"] == [] and info["nf4"]["quantized"] == 27
    nf4 = [(n, p) for n, p in inner.named_parameters() if isinstance(p, NF4Tensor) or isinstance(p.data, NF4Tensor)]
    assert len(nf4) == 27 and all(not p.requires_grad for _, p in nf4)
    # really 4-bit: 16 levels per block, and the dequantized weight differs from the fp32 one (but stays close)
    n0, w0 = nf4[0]
    orig = ref.get_submodule(n0.replace(".base_layer", "").rsplit(".", 1)[0]).weight.detach()
    deq = w0.get_original_weight()
    rel = float((deq - orig).norm() / orig.norm())
    assert 0.01 < rel < 0.2
    assert len(torch.unique(deq.reshape(-1, 64)[0])) <= 16
    assert info["nf4"]["weight_bytes_nf4"] < info["nf4"]["weight_bytes_fp32"] / 6  # 4 bit + scalers vs 32 bit
    px, ids = _inputs()
    loss = inner.encode_image(px).square().sum() + inner.encode_text(ids).square().sum()
    loss.backward()
    assert all(p.grad is None for _, p in nf4)
    grads = [n for n, p in trainable_parameters(trainable) if p.grad is not None]
    assert grads and all("lora_" in n for n in grads)


def test_trainable_parameter_counts():
    r = 4
    m = build_cxr_clip(TINY)
    total = sum(p.numel() for p in m.parameters())
    # full: everything but the locked image part (patch/position embeddings + the first ViT block)
    locked = sum(p.numel() for n, p in m.named_parameters()
                 if n.startswith("vision.vit.embeddings.") or n.startswith("vision.vit.layers.0."))
    trainable, _, _ = setup_method(m, "full")
    assert count_parameters(trainable) == {"trainable": total - locked, "total": total}
    # lora: per text layer and per unlocked ViT block 4 square H x H projections + fc1 (H -> 2H) + fc2 (2H -> H),
    # each with A (r x in) and B (out x r); 2 text layers + 1 unlocked block; the image head (2H -> H, H -> H) and
    # the text projection (H -> H); + logit_scale and logit_bias
    per_block = 4 * r * (H + H) + 2 * r * (H + 2 * H)
    expected = 3 * per_block + r * (2 * H + H) + r * (H + H) + r * (H + H) + 2
    assert len(lora_targets(build_cxr_clip(TINY))) == 21
    for method in ("lora", "qlora"):
        trainable, _, _ = setup_method(build_cxr_clip(TINY), method, r=r, alpha=8)
        assert count_parameters(trainable)["trainable"] == expected


def test_nf4_rejects_a_weight_that_does_not_fill_a_block():
    lin = torch.nn.Sequential(torch.nn.Linear(10, 3), torch.nn.Linear(64, 64))
    info = quantize_linears_nf4(lin)
    assert info["kept_fp32"] == ["0"] and info["quantized"] == 1


@needs_data
def test_split_never_reads_lung_sam_heldout_images():
    golden = json.loads((ROOT / "tests" / "goldens" / "lung-sam" / "heldout.json").read_text())
    held_card = {im["image"] for im in golden["images"]}
    train, held = adult_rows(DATA)
    assert {Path(r["image"]).stem for r in held} == held_card
    s = task_split("view", 0, 0.2, DATA)
    used = {Path(p).stem for part in ("train", "val") for p, _ in s["train"] + s["val"]}
    assert not used & held_card and len(used) == len(train)
    assert not {p for p, _ in s["train"]} & {p for p, _ in s["val"]}


def _base(path):
    """A tiny stand-in saved like a trained cxr-clip: token rows outside a small known vocabulary zeroed."""
    m = build_cxr_clip(TINY)
    restrict_vocabulary(m, np.unique(tokenize(["a chest x-ray showing pneumonia", "an AP chest radiograph"], 77)))
    return save_cxr_clip(m, path), len(m.config["known_token_ids"])


def _run(model_dir, out, method, *extra):
    argv = ["clip-finetune", "--method", method, "--model", str(model_dir), "--out", str(out), "--steps", "4",
            "--batch", "6", "--limit-images", "30", "--warmup", "2", "--log-every", "2", "--data", str(DATA), "--retention-per-class", "0", *extra]
    assert cli.main(argv) == 0


@needs_data
def test_resume_after_max_minutes_matches_an_uninterrupted_run(tmp_path):
    model_dir, _ = _base(tmp_path / "base")
    _run(model_dir, tmp_path / "a", "lora", "--no-export")
    # --max-minutes 0 stops after the first step: checkpoint kept, nothing merged yet
    _run(model_dir, tmp_path / "b", "lora", "--no-export", "--max-minutes", "0")
    assert not (tmp_path / "b" / "result.json").exists()
    assert torch.load(tmp_path / "b" / "checkpoint.pt", weights_only=False)["step"] == 1
    _run(model_dir, tmp_path / "b", "lora", "--no-export")
    ra, rb = (json.loads((tmp_path / d / "result.json").read_text()) for d in ("a", "b"))
    assert rb["steps"] == ra["steps"] == 4 and rb["steps_this_call"] == 3
    a, b = load_cxr_clip(tmp_path / "a" / "merged"), load_cxr_clip(tmp_path / "b" / "merged")
    sa, sb = a.state_dict(), b.state_dict()
    assert max(float((sa[k] - sb[k]).abs().max()) for k in sa) <= 1e-6
    base = load_cxr_clip(model_dir).state_dict()
    assert max(float((sa[k] - base[k]).abs().max()) for k in sa) > 1e-4  # training changed the weights
    # a checkpoint of another configuration is refused, naming the cause
    assert cli.main(["clip-finetune", "--method", "full", "--model", str(model_dir), "--out", str(tmp_path / "b"),
                     "--steps", "4", "--data", str(DATA), "--limit-images", "30"]) == 1


@needs_data
def test_qlora_run_exports_merged_onnx_with_parity(tmp_path):
    import onnxruntime as ort

    model_dir, n_known = _base(tmp_path / "base")
    _run(model_dir, tmp_path / "q", "qlora", "--retention-per-class", "30")
    r = json.loads((tmp_path / "q" / "result.json").read_text())
    # the old task (Kermany pneumonia vs normal) scored before and after on pneumonia-vit's validation carve-out
    assert r["n_retention"] == 6 and 0.0 <= r["retention_merged"]["auc"] <= 1.0 and r["retention_base"]
    assert r["trainable_parameters"] == r["expected_trainable_parameters"]
    assert r["merged_vs_unmerged_max_abs"] <= 1e-4 and r["nf4"]["quantized"] == 27
    assert max(r["onnx"]["parity"].values()) <= 1e-4
    # LoRA adapts Linear layers only: the zeroed rows of words the base never saw stay zero (and out of the graph)
    assert r["onnx"]["known_tokens"] == n_known and r["vocab"]["train_captions"]["unknown_to_base"] > 0
    # the exported graph is the merged model: compare with the reloaded merged safetensors on a fresh input
    merged = load_cxr_clip(tmp_path / "q" / "merged")
    px, ids = _inputs()
    ids = torch.cat([ids, torch.full((3, 65), 49407)], 1)  # 77 tokens, as exported
    sess = ort.InferenceSession(str(tmp_path / "q" / "onnx" / "text_encoder.onnx"))
    got = sess.run(None, {"input_ids": ids.numpy()})[0]
    assert np.abs(got - _outputs(merged, px, ids)[1]).max() <= 1e-4
