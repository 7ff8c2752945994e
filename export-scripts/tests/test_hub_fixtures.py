"""`cxr-export hub-fixtures` (issue 20.4): the repos load with transformers' own loaders (configs, image processors,
tokenizers), carry exactly the transformers.js file set and graph I/O names, and every fp32 ONNX graph reproduces the
PyTorch goldens within 1e-4. Uses tests/.hub-fixtures when it holds a fresh full run (stamp.json), else builds one in a
temporary folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT

pytest.importorskip("torch")
pytest.importorskip("transformers")
ort = pytest.importorskip("onnxruntime")

ATOL = 1e-4
VARIANTS = ("", "_quantized", "_fp16")
GRAPHS = {
    "tiny-clip": ["model", "text_model", "vision_model"],
    "tiny-siglip": ["model", "text_model", "vision_model"],
    "tiny-sam": ["vision_encoder", "prompt_encoder_mask_decoder"],
    "tiny-sam-boxes": ["vision_encoder", "prompt_encoder_mask_decoder"],
    "tiny-vit-cxr": ["model"],
    "tiny-bert": ["model"],
}
ARCH = {"tiny-clip": "CLIPModel", "tiny-siglip": "SiglipModel", "tiny-sam": "SamModel", "tiny-sam-boxes": "SamModel",
        "tiny-vit-cxr": "ViTForImageClassification", "tiny-bert": "BertModel"}
TOKENIZED = {"tiny-clip", "tiny-siglip", "tiny-bert"}
# Xenova/slimsam-77-uniform, Xenova/clip-vit-base-patch32, Xenova/siglip-base-patch16-224 (Optimum exports)
IO = {
    ("tiny-clip", "model"): (["input_ids", "pixel_values", "attention_mask"],
                             ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]),
    ("tiny-clip", "text_model"): (["input_ids", "attention_mask"], ["text_embeds", "last_hidden_state"]),
    ("tiny-clip", "vision_model"): (["pixel_values"], ["image_embeds", "last_hidden_state"]),
    ("tiny-siglip", "model"): (["input_ids", "pixel_values"],
                               ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"]),
    ("tiny-siglip", "text_model"): (["input_ids"], ["last_hidden_state", "pooler_output"]),
    ("tiny-siglip", "vision_model"): (["pixel_values"], ["last_hidden_state", "pooler_output"]),
    ("tiny-sam", "vision_encoder"): (["pixel_values"], ["image_embeddings", "image_positional_embeddings"]),
    ("tiny-sam", "prompt_encoder_mask_decoder"): (
        ["image_embeddings", "image_positional_embeddings", "input_points", "input_labels"],
        ["iou_scores", "pred_masks"]),
    ("tiny-sam-boxes", "prompt_encoder_mask_decoder"): (
        ["image_embeddings", "image_positional_embeddings", "input_points", "input_labels", "input_boxes"],
        ["iou_scores", "pred_masks"]),
    ("tiny-vit-cxr", "model"): (["pixel_values"], ["logits"]),
}


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory) -> Path:
    from cxr_export.hub_fixtures import is_fresh, write_hub_fixtures

    shared = REPO_ROOT / "tests" / ".hub-fixtures"
    if is_fresh(shared):
        return shared
    out = tmp_path_factory.mktemp("hub-fixtures")
    write_hub_fixtures(out)
    assert is_fresh(out)
    return out


def _t(doc: dict) -> np.ndarray:
    return np.asarray(doc["data"], dtype=np.int64 if doc["dtype"] == "int64" else np.float32).reshape(doc["dims"])


def _golden(root: Path, name: str) -> dict:
    return json.loads((root / "_goldens" / f"{name}.json").read_text())


def _run(path: Path, feeds: dict) -> dict[str, np.ndarray]:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


@pytest.mark.parametrize("name", list(GRAPHS))
def test_layout_and_transformers_loaders(hub_root, name):
    from transformers import AutoConfig, AutoModel, AutoModelForImageClassification

    repo = hub_root / "cxr-fixtures" / name
    files = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    want = {"config.json"} | ({"preprocessor_config.json"} if name != "tiny-bert" else set())
    if name in TOKENIZED:
        want |= {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"}
    want |= {f"onnx/{g}{v}.onnx" for g in GRAPHS[name] for v in VARIANTS}
    if name in ("tiny-clip", "tiny-siglip"):
        want.add("model.safetensors")  # the learned logit_scale / logit_bias the app reads by Range requests
    assert files == sorted(want)
    cfg = AutoConfig.from_pretrained(repo)
    assert cfg.architectures == [ARCH[name]]
    # the config builds the architecture it names (random init; the repo holds ONNX weights only)
    auto = AutoModelForImageClassification if name == "tiny-vit-cxr" else AutoModel
    assert type(auto.from_config(cfg)).__name__ == ARCH[name]
    if name == "tiny-vit-cxr":
        assert cfg.id2label == {0: "NORMAL", 1: "PNEUMONIA"}
    for g in GRAPHS[name]:
        sessions = [ort.InferenceSession(str(repo / "onnx" / f"{g}{v}.onnx"), providers=["CPUExecutionProvider"])
                    for v in VARIANTS]
        ios = {(tuple(i.name for i in s.get_inputs()), tuple(o.name for o in s.get_outputs())) for s in sessions}
        assert len(ios) == 1, f"{name}/{g}: the dtype variants differ in I/O names: {ios}"
        if (name, g) in IO:
            ins, outs = IO[(name, g)]
            assert ios.pop() == (tuple(ins), tuple(outs))


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-siglip"])
def test_safetensors_hold_the_learned_temperature(hub_root, name):
    """model.safetensors loads with transformers' from_pretrained; its logit_scale (and SigLIP's logit_bias) is the
    golden's, unlike config.json's initial value, and small enough to keep the fixtures small."""
    from transformers import AutoModel

    repo, g = hub_root / "cxr-fixtures" / name, _golden(hub_root, name)
    assert (repo / "model.safetensors").stat().st_size < 2_000_000
    model = AutoModel.from_pretrained(repo)
    scale = float(model.logit_scale.exp())
    assert abs(scale - g["logit_scale"]) < 1e-4
    assert abs(scale - g["config_logit_scale"]) > 1.0
    if name == "tiny-siglip":
        assert abs(float(model.logit_bias) - g["logit_bias"]) < 1e-6 and g["logit_bias"] != 0


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-siglip", "tiny-vit-cxr"])
def test_processor_and_tokenizer_reproduce_golden_inputs(hub_root, name):
    """transformers' AutoImageProcessor / tokenizer built from the repo's own files give the golden's inputs."""
    from PIL import Image
    from transformers import AutoImageProcessor, PreTrainedTokenizerFast

    repo, g = hub_root / "cxr-fixtures" / name, _golden(hub_root, name)
    proc = AutoImageProcessor.from_pretrained(repo)
    img = Image.open(hub_root / "_goldens" / g["image"]).convert("RGB")
    pix = np.asarray(proc(images=img, return_tensors="np")["pixel_values"], np.float32)
    np.testing.assert_allclose(pix, _t(g["inputs"]["pixel_values"]), atol=1e-5)
    if name == "tiny-vit-cxr":
        return
    tok = PreTrainedTokenizerFast(tokenizer_file=str(repo / "tokenizer.json"))
    tcfg = json.loads((repo / "tokenizer_config.json").read_text())
    assert tcfg["tokenizer_class"] == {"tiny-clip": "CLIPTokenizer", "tiny-siglip": "SiglipTokenizer"}[name]
    pad = g["tokenizer"]
    kw = ({"padding": "max_length", "max_length": pad["max_length"]} if pad["padding"] == "max_length"
          else {"padding": "longest"})
    tok.pad_token = tcfg["pad_token"]
    ids = tok(g["prompts"], return_tensors="np", **kw)["input_ids"]
    np.testing.assert_array_equal(ids, _t(g["inputs"]["input_ids"]))


@pytest.mark.parametrize("name", ["tiny-clip", "tiny-siglip"])
def test_text_image_graphs_match_pytorch(hub_root, name):
    repo, g = hub_root / "cxr-fixtures" / name, _golden(hub_root, name)
    inp, out = {k: _t(v) for k, v in g["inputs"].items()}, {k: _t(v) for k, v in g["outputs"].items()}
    dual = _run(repo / "onnx" / "model.onnx", inp)
    for k in ("logits_per_image", "logits_per_text", "text_embeds", "image_embeds"):
        np.testing.assert_allclose(dual[k], out[k], atol=ATOL, err_msg=k)
    text_in = {k: v for k, v in inp.items() if k != "pixel_values"}
    text = _run(repo / "onnx" / "text_model.onnx", text_in)
    vision = _run(repo / "onnx" / "vision_model.onnx", {"pixel_values": inp["pixel_values"]})
    if name == "tiny-clip":
        np.testing.assert_allclose(text["text_embeds"], out["text_model.text_embeds"], atol=ATOL)
        np.testing.assert_allclose(vision["image_embeds"], out["vision_model.image_embeds"], atol=ATOL)
        probs = np.exp(dual["logits_per_image"]) / np.exp(dual["logits_per_image"]).sum(-1, keepdims=True)
        # the dual graph's normalised embeddings are the towers' projections, normalised
        t = text["text_embeds"] / np.linalg.norm(text["text_embeds"], axis=-1, keepdims=True)
        np.testing.assert_allclose(t, out["text_embeds"], atol=ATOL)
    else:
        np.testing.assert_allclose(text["pooler_output"], out["text_model.pooler_output"], atol=ATOL)
        np.testing.assert_allclose(vision["pooler_output"], out["vision_model.pooler_output"], atol=ATOL)
        probs = 1 / (1 + np.exp(-dual["logits_per_image"]))
    np.testing.assert_allclose(probs, out["probs"], atol=ATOL)
    assert float(out["probs"].max() - out["probs"].min()) > 1e-3, "probabilities should not be degenerate"


def test_vit_graph_matches_pytorch(hub_root):
    repo, g = hub_root / "cxr-fixtures" / "tiny-vit-cxr", _golden(hub_root, "tiny-vit-cxr")
    got = _run(repo / "onnx" / "model.onnx", {"pixel_values": _t(g["inputs"]["pixel_values"])})
    np.testing.assert_allclose(got["logits"], _t(g["outputs"]["logits"]), atol=ATOL)
    assert g["labels"] == ["NORMAL", "PNEUMONIA"]


@pytest.mark.parametrize("name", ["tiny-sam", "tiny-sam-boxes"])
def test_sam_graphs_match_pytorch(hub_root, name):
    """vision_encoder then prompt_encoder_mask_decoder on each case's prompts give transformers SamModel's iou_scores
    and low-res mask logits; upscaling them as SamProcessor.post_process_masks does gives the golden masks."""
    import torch
    import torch.nn.functional as F

    repo, g = hub_root / "cxr-fixtures" / name, _golden(hub_root, name)
    enc = _run(repo / "onnx" / "vision_encoder.onnx", {"pixel_values": _t(g["inputs"]["pixel_values"])})
    h, w = g["original_size"]
    assert g["cases"]
    for case, c in g["cases"].items():
        feeds = {**{k: _t(v) for k, v in c["inputs"].items()}, **enc}
        got = _run(repo / "onnx" / "prompt_encoder_mask_decoder.onnx", feeds)
        np.testing.assert_allclose(got["iou_scores"], _t(c["outputs"]["iou_scores"]), atol=ATOL, err_msg=case)
        np.testing.assert_allclose(got["pred_masks"], _t(c["outputs"]["pred_masks"]), atol=ATOL, err_msg=case)
        # post_process_masks: bilinear to the padded input size, crop the resized image, bilinear to the original
        s = int(g["inputs"]["pixel_values"]["dims"][-1])
        m = F.interpolate(torch.from_numpy(got["pred_masks"][0]), (s, s), mode="bilinear", align_corners=False)
        rh, rw = round(h * s / max(h, w)), round(w * s / max(h, w))
        m = F.interpolate(m[..., :rh, :rw], (h, w), mode="bilinear", align_corners=False)
        np.testing.assert_allclose(m.numpy(), _t(c["outputs"]["masks"]), atol=ATOL, err_msg=case)
