"""The text-and-image repos of `cxr-export hub-fixtures` (hub_fixtures.py): tiny random CLIPModel and SiglipModel in
the Optimum / transformers.js layout (onnx/model.onnx for the dual model, onnx/text_model.onnx and
onnx/vision_model.onnx for the single towers that transformers.js loads as CLIPTextModelWithProjection /
CLIPVisionModelWithProjection and SiglipTextModel / SiglipVisionModel), with tokenizer files and PyTorch goldens.

Input / output names and dynamic axes follow Optimum's CLIPOnnxConfig, CLIPTextWithProjectionOnnxConfig,
CLIPVisionModelOnnxConfig and SiglipOnnxConfig (optimum/exporters/onnx/model_configs.py):
  CLIP model.onnx   input_ids, pixel_values, attention_mask -> logits_per_image, logits_per_text, text_embeds,
                    image_embeds (embeddings L2-normalised, logits = exp(logit_scale) * cosine)
  text_model.onnx   input_ids, attention_mask -> text_embeds (projected, not normalised), last_hidden_state
  vision_model.onnx pixel_values -> image_embeds (projected, not normalised), last_hidden_state
  SigLIP model.onnx input_ids, pixel_values -> logits_per_image, logits_per_text, text_embeds, image_embeds
                    (probabilities: sigmoid(logits_per_image), SigLIP's pairwise sigmoid loss)
  text_model.onnx   input_ids -> last_hidden_state, pooler_output
  vision_model.onnx pixel_values -> last_hidden_state, pooler_output
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .common import seed_all
from .hub_fixtures_common import ORG, _np, _softmax, _spread_, export_graph, save_config, save_fast_tokenizer, \
    save_processor, write_golden, write_image

PROMPTS = ["a chest x-ray with pneumonia", "a normal chest x-ray", "pleural effusion"]
# CLIP BPE restricted to its first merges: the vocabulary of ../shared/weights/clip-tokenizer is ordered bytes (256),
# bytes</w> (256), then one token per merge in merge order, then the two specials; keeping the first CLIP_MERGES
# merges gives a consistent smaller BPE (words split into more pieces) and a 4.5k-row embedding instead of 49k.
CLIP_MERGES = 4000
SIGLIP_BIAS = -1.5
SIGLIP_LEN = 16  # SigLIP pads text to a fixed length (max_length) and pools the last token


def clip_tokenizer_files(repo: Path):
    """CLIP BPE (OpenAI vocab/merges from ../shared, read in place, first CLIP_MERGES merges) saved by transformers'
    CLIPTokenizer.save_pretrained. Returns (tokenizer, vocab_size, bos_id, eos_id)."""
    from transformers import CLIPTokenizer

    from .tokenizer_builders import shared_clip_tokenizer_files

    vocab_path, merges_path = shared_clip_tokenizer_files()
    full = json.loads(Path(vocab_path).read_text())
    lines = [ln for ln in Path(merges_path).read_text().split("\n") if ln and not ln.startswith("#version")]
    merges = lines[:CLIP_MERGES]
    keep = 512 + CLIP_MERGES
    by_id = sorted(full.items(), key=lambda kv: kv[1])
    vocab = {tok: i for tok, i in by_id[:keep]}
    for i, piece in enumerate(["<|startoftext|>", "<|endoftext|>"]):
        vocab[piece] = keep + i
    merged = {"".join(m.split(" ")) for m in merges}
    missing = [t for t, i in vocab.items() if 512 <= i < keep and t not in merged]
    if missing:
        raise RuntimeError(f"CLIP vocab order does not follow its merges: {missing[:3]}")
    tok = CLIPTokenizer(vocab=vocab, merges=[tuple(m.split(" ")) for m in merges], model_max_length=77)
    tok.save_pretrained(repo)
    smap = repo / "special_tokens_map.json"
    if not smap.exists():
        smap.write_text(json.dumps({"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>",
                                    "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}, indent=2) + "\n")
    return tok, len(vocab), keep, keep + 1


def _restore_scale(model, names: dict[str, float]) -> None:
    import torch

    with torch.no_grad():
        for n, v in names.items():
            getattr(model, n).fill_(v)


def save_safetensors(model, repo: Path) -> int:
    """repo/model.safetensors as transformers' save_pretrained writes it (the published repos' PyTorch weights, where
    the learned logit_scale / logit_bias live: the ONNX towers do not carry them). config.json stays save_config's.
    Returns its size in bytes."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        shutil.copyfile(Path(tmp) / "model.safetensors", repo / "model.safetensors")
    return (repo / "model.safetensors").stat().st_size


def config_scale_probs(te: np.ndarray, ie: np.ndarray, scale: float, bias: float, sigmoid: bool) -> np.ndarray:
    """Probabilities an app gets with a temperature that is not the learned one (the fallback without
    model.safetensors): logits = scale * cosine(image, text) + bias, softmax over prompts or per-prompt sigmoid.
    te [T, D], ie [1, D] are the model's L2-normalised embeddings."""
    logits = scale * (ie.astype(np.float64) @ te.astype(np.float64).T) + bias
    return 1 / (1 + np.exp(-logits)) if sigmoid else _softmax(logits)


def clip_repo(out: Path, gdir: Path, seed: int) -> dict:
    import torch
    from PIL import Image
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    repo = out / ORG / "tiny-clip"
    (repo / "onnx").mkdir(parents=True, exist_ok=True)
    tok, vsize, bos, eos = clip_tokenizer_files(repo)
    seed_all(seed)
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    cfg = CLIPConfig(text_config=dict(vocab_size=vsize, max_position_embeddings=77, bos_token_id=bos,
                                      eos_token_id=eos, pad_token_id=eos, **tower),
                     vision_config=dict(image_size=32, patch_size=8, **tower), projection_dim=16,
                     attn_implementation="eager")
    model = CLIPModel(cfg).eval()
    _spread_(model, seed)
    # A learned temperature (exp = 50) unlike the config's logit_scale_init_value (exp(2.6592) = 14.3), as trained CLIPs
    # have (openai/clip-vit-base-patch32: 100): the app must read it from model.safetensors, not config.json.
    _restore_scale(model, {"logit_scale": float(np.log(50.0))})
    save_config(model, repo)
    save_safetensors(model, repo)
    size, crop = {"shortest_edge": 32}, {"height": 32, "width": 32}
    save_processor(CLIPImageProcessor(size=size, crop_size=crop), repo, "CLIPProcessor")
    img_name, rgb = write_image(gdir, 32, 32)
    pix = CLIPImageProcessorPil(size=size, crop_size=crop)(images=Image.fromarray(rgb, "RGB"),
                                                           return_tensors="np")["pixel_values"].astype(np.float32)
    enc = tok(PROMPTS, padding=True, return_tensors="np")
    ids, mask = enc["input_ids"].astype(np.int64), enc["attention_mask"].astype(np.int64)
    t_ids, t_mask, t_pix = torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(pix)

    class Dual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, pixel_values, attention_mask):
            o = self.m(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask)
            return o.logits_per_image, o.logits_per_text, o.text_embeds, o.image_embeds

    class Text(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, attention_mask):
            o = self.m.text_model(input_ids=input_ids, attention_mask=attention_mask)
            return self.m.text_projection(o.pooler_output), o.last_hidden_state

    class Vision(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, pixel_values):
            o = self.m.vision_model(pixel_values=pixel_values)
            return self.m.visual_projection(o.pooler_output), o.last_hidden_state

    with torch.no_grad():
        lpi, lpt, te, ie = (_np(t) for t in Dual()(t_ids, t_pix, t_mask))
        te_raw, t_last = (_np(t) for t in Text()(t_ids, t_mask))
        ie_raw, v_last = (_np(t) for t in Vision()(t_pix))
    text_ax = {0: "text_batch_size", 1: "sequence_length"}
    pix_ax = {0: "image_batch_size", 1: "num_channels", 2: "height", 3: "width"}
    parity = {
        "model": export_graph(Dual(), (t_ids, t_pix, t_mask), repo / "onnx", "model",
                              ["input_ids", "pixel_values", "attention_mask"],
                              ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"],
                              {"input_ids": text_ax, "pixel_values": pix_ax, "attention_mask": text_ax,
                               "logits_per_image": {0: "image_batch_size", 1: "text_batch_size"},
                               "logits_per_text": {0: "text_batch_size", 1: "image_batch_size"},
                               "text_embeds": {0: "text_batch_size"}, "image_embeds": {0: "image_batch_size"}},
                              {"logits_per_image": lpi, "logits_per_text": lpt, "text_embeds": te, "image_embeds": ie},
                              {"input_ids": ids, "pixel_values": pix, "attention_mask": mask}),
        "text_model": export_graph(Text(), (t_ids, t_mask), repo / "onnx", "text_model",
                                   ["input_ids", "attention_mask"], ["text_embeds", "last_hidden_state"],
                                   {"input_ids": {0: "batch_size", 1: "sequence_length"},
                                    "attention_mask": {0: "batch_size", 1: "sequence_length"},
                                    "text_embeds": {0: "batch_size"},
                                    "last_hidden_state": {0: "batch_size", 1: "sequence_length"}},
                                   {"text_embeds": te_raw, "last_hidden_state": t_last},
                                   {"input_ids": ids, "attention_mask": mask}),
        "vision_model": export_graph(Vision(), (t_pix,), repo / "onnx", "vision_model", ["pixel_values"],
                                     ["image_embeds", "last_hidden_state"],
                                     {"pixel_values": {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"},
                                      "image_embeds": {0: "batch_size"}, "last_hidden_state": {0: "batch_size"}},
                                     {"image_embeds": ie_raw, "last_hidden_state": v_last}, {"pixel_values": pix}),
    }
    write_golden(gdir, "tiny-clip", {
        "repo": f"{ORG}/tiny-clip", "architecture": "CLIPModel", "image": img_name, "prompts": PROMPTS,
        "tokenizer": {"padding": "longest"},
        "inputs": {"input_ids": ids, "attention_mask": mask, "pixel_values": pix},
        "outputs": {"logits_per_image": lpi, "logits_per_text": lpt, "text_embeds": te, "image_embeds": ie,
                    "probs": _softmax(lpi), "text_model.text_embeds": te_raw, "vision_model.image_embeds": ie_raw,
                    "probs_config_scale": config_scale_probs(te, ie, float(np.exp(cfg.logit_scale_init_value)), 0.0,
                                                             False)},
        "logit_scale": float(model.logit_scale.exp()), "config_logit_scale": float(np.exp(cfg.logit_scale_init_value)),
        "meta": {"reference": "transformers CLIPModel + CLIPImageProcessorPil + CLIPTokenizer (PyTorch, fp32); "
                              "probs = softmax(logits_per_image) over the prompts (learned logit_scale, in "
                              "model.safetensors); probs_config_scale = softmax(exp(logit_scale_init_value) * cosine)",
                 "atol": 1e-4, "parity": parity}})
    return {"repo": f"{ORG}/tiny-clip", "parity": parity}


def siglip_tokenizer(repo: Path):
    """A small SentencePiece-style Unigram tokenizer (as SigLIP's T5-derived one: Metaspace '▁', '</s>' appended,
    '</s>' pads) over the fixture words and single characters, saved with tokenizer_class SiglipTokenizer."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    from .tokenizer_builders import FIXTURE_WORDS

    specials = ["<pad>", "</s>", "<unk>"]
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    pieces = [(s, 0.0) for s in specials] + [("▁", -2.0)]
    pieces += [("▁" + w, -5.0 - 0.01 * i) for i, w in enumerate(dict.fromkeys(FIXTURE_WORDS))]
    pieces += [(c, -10.0) for c in chars] + [("▁" + c, -9.0) for c in chars]
    tok = Tokenizer(Unigram(pieces, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(" ", "▁")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    save_fast_tokenizer(tok, repo, {"tokenizer_class": "SiglipTokenizer", "model_max_length": SIGLIP_LEN,
                                    "do_lower_case": True},
                        {"eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>"})
    tok.enable_padding(length=SIGLIP_LEN, pad_id=1, pad_token="</s>")
    tok.enable_truncation(max_length=SIGLIP_LEN)
    return tok, len(pieces)


def siglip_repo(out: Path, gdir: Path, seed: int) -> dict:
    import torch
    from PIL import Image
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    repo = out / ORG / "tiny-siglip"
    (repo / "onnx").mkdir(parents=True, exist_ok=True)
    tok, vsize = siglip_tokenizer(repo)
    seed_all(seed)
    tower = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    cfg = SiglipConfig(text_config=dict(vocab_size=vsize, max_position_embeddings=SIGLIP_LEN, pad_token_id=1,
                                        eos_token_id=1, bos_token_id=None, **tower),
                       vision_config=dict(image_size=32, patch_size=8, **tower), attn_implementation="eager")
    model = SiglipModel(cfg).eval()
    _spread_(model, seed)
    # exp(logit_scale) = 10, bias -1.5 (transformers inits both to 0; SiglipConfig has no init value): a random model's
    # sigmoid probabilities spread over (0, 1) instead of all ~1e-6, and the bias must be read from model.safetensors.
    _restore_scale(model, {"logit_scale": float(np.log(10.0)), "logit_bias": SIGLIP_BIAS})
    save_config(model, repo)
    save_safetensors(model, repo)
    size = {"height": 32, "width": 32}
    save_processor(SiglipImageProcessor(size=size), repo, "SiglipProcessor")
    img_name, rgb = write_image(gdir, 32, 32)
    pix = SiglipImageProcessorPil(size=size)(images=Image.fromarray(rgb, "RGB"),
                                             return_tensors="np")["pixel_values"].astype(np.float32)
    ids = np.array([e.ids for e in tok.encode_batch(PROMPTS)], dtype=np.int64)
    t_ids, t_pix = torch.from_numpy(ids), torch.from_numpy(pix)

    class Dual(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, input_ids, pixel_values):
            o = self.m(input_ids=input_ids, pixel_values=pixel_values)
            return o.logits_per_image, o.logits_per_text, o.text_embeds, o.image_embeds

    class Tower(torch.nn.Module):
        def __init__(self, sub, arg):
            super().__init__()
            self.m, self.arg = sub, arg

        def forward(self, x):
            o = self.m(**{self.arg: x})
            return o.last_hidden_state, o.pooler_output

    text, vision = Tower(model.text_model, "input_ids"), Tower(model.vision_model, "pixel_values")
    with torch.no_grad():
        lpi, lpt, te, ie = (_np(t) for t in Dual()(t_ids, t_pix))
        t_last, t_pool = (_np(t) for t in text(t_ids))
        v_last, v_pool = (_np(t) for t in vision(t_pix))
    text_ax = {0: "text_batch_size", 1: "sequence_length"}
    pix_ax = {0: "image_batch_size", 1: "num_channels", 2: "height", 3: "width"}
    parity = {
        "model": export_graph(Dual(), (t_ids, t_pix), repo / "onnx", "model", ["input_ids", "pixel_values"],
                              ["logits_per_image", "logits_per_text", "text_embeds", "image_embeds"],
                              {"input_ids": text_ax, "pixel_values": pix_ax,
                               "logits_per_image": {0: "image_batch_size", 1: "text_batch_size"},
                               "logits_per_text": {0: "text_batch_size", 1: "image_batch_size"},
                               "text_embeds": {0: "text_batch_size"}, "image_embeds": {0: "image_batch_size"}},
                              {"logits_per_image": lpi, "logits_per_text": lpt, "text_embeds": te, "image_embeds": ie},
                              {"input_ids": ids, "pixel_values": pix}),
        "text_model": export_graph(text, (t_ids,), repo / "onnx", "text_model", ["input_ids"],
                                   ["last_hidden_state", "pooler_output"],
                                   {"input_ids": {0: "batch_size", 1: "sequence_length"},
                                    "last_hidden_state": {0: "batch_size", 1: "sequence_length"},
                                    "pooler_output": {0: "batch_size"}},
                                   {"last_hidden_state": t_last, "pooler_output": t_pool}, {"input_ids": ids}),
        "vision_model": export_graph(vision, (t_pix,), repo / "onnx", "vision_model", ["pixel_values"],
                                     ["last_hidden_state", "pooler_output"],
                                     {"pixel_values": {0: "batch_size", 1: "num_channels", 2: "height", 3: "width"},
                                      "last_hidden_state": {0: "batch_size"}, "pooler_output": {0: "batch_size"}},
                                     {"last_hidden_state": v_last, "pooler_output": v_pool}, {"pixel_values": pix}),
    }
    write_golden(gdir, "tiny-siglip", {
        "repo": f"{ORG}/tiny-siglip", "architecture": "SiglipModel", "image": img_name, "prompts": PROMPTS,
        "tokenizer": {"padding": "max_length", "max_length": SIGLIP_LEN},
        "inputs": {"input_ids": ids, "pixel_values": pix},
        "outputs": {"logits_per_image": lpi, "logits_per_text": lpt, "text_embeds": te, "image_embeds": ie,
                    "probs": 1 / (1 + np.exp(-lpi)), "text_model.pooler_output": t_pool,
                    "vision_model.pooler_output": v_pool,
                    "probs_config_scale": config_scale_probs(te, ie, 1.0, 0.0, True)},
        "logit_scale": float(model.logit_scale.exp()), "logit_bias": float(model.logit_bias),
        "config_logit_scale": 1.0, "config_logit_bias": 0.0,
        "meta": {"reference": "transformers SiglipModel + SiglipImageProcessorPil (PyTorch, fp32); tokenizer.json "
                              "(padding to max_length); probs = sigmoid(logits_per_image) = sigmoid(exp(logit_scale) "
                              "* cosine + logit_bias), per prompt (model.safetensors); probs_config_scale = "
                              "sigmoid(cosine): transformers' initial logit_scale 0, logit_bias 0",
                 "atol": 1e-4, "parity": parity}})
    return {"repo": f"{ORG}/tiny-siglip", "parity": parity}
