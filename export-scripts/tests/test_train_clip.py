"""cxr-clip (issue 16): the caption grammar keeps its held-out phrasings out of training, training resumes bit-exact,
the exported graphs equal PyTorch on real images and held-out prompts, and the shipped model matches its card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cxr_export import clip_captions as C

TINY = json.dumps({"text": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                            "num_attention_heads": 2}, "head_hidden": 32, "embed_dim": 16})


def test_heldout_templates_and_phrasings_are_disjoint_from_training():
    assert not set(C.HELDOUT_TEMPLATES) & set(C.TEMPLATES)
    assert not set(C.HELDOUT_IMG_TEMPLATES) & set(C.ONLY_IMG_TEMPLATES)
    assert not set(C.HELDOUT_NOUNS) & set(C.NOUNS)
    train_findings = {f for v in C.FINDINGS.values() for f in v}
    assert not {f for v in C.HELDOUT_FINDINGS.values() for f in v} & train_findings
    sets = C.heldout_prompt_sets(12)
    assert len(sets) >= 10
    prompts = [p for s in sets for ps in s.values() for p in ps]
    assert len(set(prompts)) == len(prompts) == 24
    seen = C.training_finding_renderings()
    assert not set(prompts) & seen
    # nor can a training caption with any population / view phrase equal one: sample the grammar widely
    rng = np.random.default_rng(0)
    tags = [C.image_tags(finding="PNEUMONIA", subtype="bacteria", population="pediatric"),
            C.image_tags(finding="NORMAL", population="pediatric"),
            C.image_tags(finding="COVID-19", population="adult", view="AP Supine", sex="F", age=64)]
    drawn = {C.sample_caption(rng, t).text for _ in range(4000) for t in tags}
    held = prompts + [p for s in C.heldout_population_prompts(12) for ps in s.values() for p in ps]
    assert not set(held) & drawn


def test_label_derived_positives():
    bact = C.image_tags(finding="PNEUMONIA", subtype="bacteria", population="pediatric")
    covid = C.image_tags(finding="COVID-19", population="adult", view="PA", sex="M", age=47)
    normal = C.image_tags(finding="NORMAL", population="pediatric")
    assert C.consistent(frozenset({"pneumonia"}), bact) and C.consistent(frozenset({"pneumonia", "viral"}), covid)
    assert not C.consistent(frozenset({"viral"}), bact) and not C.consistent(frozenset({"pneumonia"}), normal)
    assert C.consistent(frozenset({"adult", "male", "age_40s", "pa"}), covid)
    assert not C.consistent(frozenset({"adult"}), bact)
    rng = np.random.default_rng(1)
    for t in (bact, covid, normal):
        for _ in range(200):
            c = C.sample_caption(rng, t)
            assert c.claims and C.consistent(c.claims, t), c


def _train(out: Path, extra: list[str]):
    from cxr_export.cli import build_parser

    argv = ["train-clip", "--out", str(out), "--limit-per-class", "6", "--views", "2", "--adult-views", "2",
            "--steps", "6", "--batch", "12", "--eval-every", "3", "--config", TINY, *extra]
    args = build_parser().parse_args(argv)
    return args.func(args)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, shared_dir):
    from safetensors.numpy import load_file

    a = _train(tmp_path / "a", [])
    assert a["done"]
    first = _train(tmp_path / "b", ["--stop-after", "2"])
    assert not first["done"] and first["step"] == 2
    import torch

    assert torch.load(tmp_path / "b/checkpoint.pt", weights_only=False)["state"]["step"] == 2  # resumes, not restarts
    second = _train(tmp_path / "b", ["--stop-after", "4"])
    assert not second["done"] and second["step"] == 4
    b = _train(tmp_path / "b", [])
    assert b["done"]
    wa = load_file(str(tmp_path / "a/final/model.safetensors"))
    wb = load_file(str(tmp_path / "b/final/model.safetensors"))
    assert wa.keys() == wb.keys()
    for k in wa:
        np.testing.assert_array_equal(wa[k], wb[k], err_msg=k)
    # LiT: every weight of the locked ViT is pneumonia-vit's; the head and the text tower were trained
    from cxr_export.clip_model import build_cxr_clip, init_vision_from_onnx

    ref = build_cxr_clip(json.loads(TINY))
    init_vision_from_onnx(ref, a["args"]["init_vision"])
    sd = {k: v.numpy() for k, v in ref.state_dict().items()}
    for k in sd:
        if k.startswith("vision.vit."):
            np.testing.assert_array_equal(wa[k], sd[k], err_msg=k)
    assert not np.array_equal(wa["vision.head.1.weight"], sd["vision.head.1.weight"])
    assert not np.array_equal(wa["text.text_projection.weight"], sd["text.text_projection.weight"])


def test_resume_refuses_other_settings(tmp_path, shared_dir):
    from cxr_export.errors import ExportError

    _train(tmp_path / "c", ["--stop-after", "2"])
    with pytest.raises(ExportError, match="other settings"):
        _train(tmp_path / "c", ["--lr", "0.01"])


def test_export_equals_pytorch_on_real_images_and_heldout_prompts(tmp_path, shared_dir):
    import torch
    from tokenizers import Tokenizer

    from cxr_export.clip_export import export, real_pixels
    from cxr_export.clip_model import load_cxr_clip, tokenize
    from cxr_export.parity import run_onnx

    _train(tmp_path / "r", [])
    model = load_cxr_clip(tmp_path / "r/final")
    models = tmp_path / "models"
    entry = export(model, models, "test")
    assert entry["config"]["parity_real"]["image_encoder"] <= 1e-4
    assert entry["config"]["parity_real"]["text_encoder"] <= 1e-4
    assert entry["config"]["logit_scale"] == pytest.approx(float(model.logit_scale.exp()), rel=1e-6)
    prompts = [p for s in C.heldout_prompt_sets(12) for ps in s.values() for p in ps] + ["a knee radiograph"]
    tok = Tokenizer.from_file(str(models / "cxr-clip/tokenizer.json"))
    ids = np.array([e.ids for e in tok.encode_batch(prompts)], np.int64)
    np.testing.assert_array_equal(ids, tokenize(prompts, 77))
    x = real_pixels(4)
    with torch.no_grad():
        ri, rt = model.encode_image(torch.from_numpy(x)).numpy(), model.encode_text(torch.from_numpy(ids)).numpy()
    gi = run_onnx(models / "cxr-clip/image_encoder.onnx", {"pixel_values": x})["image_embeds"]
    gt = run_onnx(models / "cxr-clip/text_encoder.onnx", {"input_ids": ids})["text_embeds"]
    np.testing.assert_allclose(gi, ri, atol=1e-4, rtol=0)
    np.testing.assert_allclose(gt, rt, atol=1e-4, rtol=0)
    # the compact vocabulary graph is small: only trained token rows are stored
    assert (models / "cxr-clip/text_encoder.onnx").stat().st_size < 49408 * 32 * 4 / 2


def test_shipped_cxr_clip_matches_its_card(repo_root):
    from conftest import skip_or_fail

    man = json.loads((repo_root / "public/models/manifest.json").read_text())
    entry = next((e for e in man["models"] if e["id"] == "cxr-clip"), None)
    if entry is None:
        skip_or_fail("cxr-clip is not in public/models/manifest.json")
    assert entry["weights"] == "trained" and set(entry["variants"]) == {"fp32", "int8", "fp16"}
    m = entry["card"]["metrics"]
    assert entry["card"]["int8_matches_fp32"] == all(abs(m[f"int8_{k}"] - m[k]) <= 0.005 for k in
                                                     ("accuracy", "precision", "recall", "specificity", "f1", "auc",
                                                      "ece_15"))
    assert entry["card"]["evaluation"]["fp32"]["heldout_auc"]["n_sets"] >= 10
    assert set(entry["config"]["default_prompts"]) == {"PNEUMONIA", "NORMAL"}
