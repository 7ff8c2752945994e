"""`cxr-export sd`: Stable Diffusion 1.5 + LCM-LoRA (4-step generation) to ONNX for the browser.

Graphs (one folder, public/models/<id>/):
  text_encoder.onnx  input_ids int64 [b,77] -> last_hidden_state [b,77,768]   (CLIPTextModel)
  unet.onnx          sample [b,4,h,w], timestep float32 [b], encoder_hidden_states [b,77,768]
                     (+ timestep_cond [b,D] when the UNet has time_cond_proj_dim) -> out_sample [b,4,h,w]
                     base UNet with the LCM-LoRA fused in
  unet_lora.onnx     the same with a domain LoRA (`cxr-export lora`) fused on top (only with --lora)
  unet_scaled.onnx   --unet-layout scaled|both: ONE UNet for both sides: the inputs above + lora_scale float32 [b];
                     the domain LoRA stays low-rank (unfused) and each adapted layer adds lora_scale[i] x its delta,
                     so lora_scale 0 is the base UNet exactly (x + 0·delta) and 1 the LoRA-merged one. The gallery
                     then downloads and holds one UNet instead of two (the LoRA adds only its rank-r matrices).
  vae_decoder.onnx   latent_sample [b,4,h,w] (already divided by scaling_factor) -> sample [b,3,8h,8w] in [-1,1]
  tokenizer.json     CLIP byte-level BPE, padded/truncated to 77 with <|endoftext|>
  scheduler_config.json  diffusers LCMScheduler config (timesteps: see lcm_scheduler.py)
Sources: --pretrained DIR (diffusers layout: unet/ vae/ text_encoder/ tokenizer/ scheduler/) or --random-init
--size tiny|full (SD 1.5 configs written here; full random-init takes the CLIP BPE vocab from ../shared at run time).
LCM-LoRA: --lcm-lora DIR (latent-consistency/lcm-lora-sdv1-5 layout), or with --random-init a random LoRA of the
same shape (same target modules, rank 64 full / 4 tiny).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import manifest as mf
from .common import add_common_args, atomic_dir, check_parity, export_onnx, run_onnx, seed_all, torch_threads, write_json
from .tokenizer_builders import FIXTURE_WORDS, clip_bpe_tokenizer, encode_ids, shared_clip_tokenizer_files  # noqa: F401
from .errors import ExportError

CONTEXT_LENGTH = 77
# Modules the published LCM-LoRA for SD 1.5 adapts (its adapter_config / safetensors keys).
LCM_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2", "conv1",
               "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv", "time_emb_proj"]
SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      trained_betas=None, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                      prediction_type="epsilon", timestep_spacing="leading")
SAMPLE_PROMPTS = ["a chest X-ray showing pneumonia", "a normal chest X-ray",
                  "Frontal chest radiograph, bilateral patchy opacities!"]

SD_SIZES: dict[str, dict[str, Any]] = {
    "full": dict(  # runwayml/stable-diffusion-v1-5
        unet=dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                  block_out_channels=(320, 640, 1280, 1280),
                  down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                    "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                  cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=512, layers_per_block=2,
                 block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                 up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.18215),
        text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768),
        lcm_rank=64, image_size=512),
    "tiny": dict(
        unet=dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(16, 32),
                  down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                  up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=8,
                  norm_num_groups=4),
        vae=dict(in_channels=3, out_channels=3, latent_channels=4, sample_size=32, layers_per_block=1,
                 block_out_channels=(8, 16, 16), down_block_types=("DownEncoderBlock2D",) * 3,
                 up_block_types=("UpDecoderBlock2D",) * 3, norm_num_groups=4, scaling_factor=0.18215),
        text=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                  max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=32),
        lcm_rank=4, image_size=32),
}


# ----------------------------------------------------------------------------------------------------------------
# Tokenizers
# ----------------------------------------------------------------------------------------------------------------


def shared_dir() -> Path:
    env = os.environ.get("CXR_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "shared"


def tiny_bpe_vocab(num_merges: int = 320) -> tuple[dict[str, int], list[str]]:
    """A small CLIP-style byte-level BPE of our own (not derived from OpenAI's vocab): the 256 byte symbols, their
    `</w>` word-final forms, then `num_merges` merges learned on fixture words by plain BPE (most frequent pair,
    ties broken by the pair's text, so the result is the same on every run), then the two special tokens, last
    as in CLIP."""
    from collections import Counter

    import tokenizers
    from tokenizers import pre_tokenizers

    pre = pre_tokenizers.Sequence([
        pre_tokenizers.Split(pattern=tokenizers.Regex(r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""),
                             behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    corpus = " ".join(FIXTURE_WORDS * 2 + SAMPLE_PROMPTS).lower()
    words = Counter(tuple(w[:-1]) + (w[-1] + "</w>",) for w, _ in pre.pre_tokenize_str(corpus))
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab: dict[str, int] = {}
    for t in alphabet + [c + "</w>" for c in alphabet]:
        vocab[t] = len(vocab)
    merges: list[str] = []
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for w, n in words.items():
            for pair in zip(w, w[1:]):
                pairs[pair] += n
        if not pairs:
            break
        best = min(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0]
        merged = best[0] + best[1]
        merges.append(f"{best[0]} {best[1]}")
        if merged not in vocab:
            vocab[merged] = len(vocab)
        new_words: Counter = Counter()
        for w, n in words.items():
            out, i = [], 0
            while i < len(w):
                if i + 1 < len(w) and (w[i], w[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(w[i])
                    i += 1
            new_words[tuple(out)] += n
        words = new_words
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    return vocab, merges


def sd_tokenizer(size: str, pretrained: Path | None = None):
    """HF tokenizers.Tokenizer for the text encoder (77 tokens, pad = <|endoftext|>)."""
    if pretrained is not None:
        tdir = pretrained / "tokenizer"
        if (tdir / "vocab.json").exists() and (tdir / "merges.txt").exists():
            return clip_bpe_tokenizer(tdir / "vocab.json", tdir / "merges.txt", CONTEXT_LENGTH)
        if (tdir / "tokenizer.json").exists():
            from tokenizers import Tokenizer

            tok = Tokenizer.from_file(str(tdir / "tokenizer.json"))
            eos = tok.token_to_id("<|endoftext|>")
            tok.enable_truncation(CONTEXT_LENGTH)
            tok.enable_padding(length=CONTEXT_LENGTH, pad_id=eos, pad_token="<|endoftext|>")
            return tok
        raise ExportError(f"--pretrained {pretrained}: no tokenizer/ (vocab.json + merges.txt or tokenizer.json)")
    if size == "tiny":
        vocab, merges = tiny_bpe_vocab()
        return clip_bpe_tokenizer(vocab, merges, CONTEXT_LENGTH)
    vocab, merges = shared_clip_tokenizer_files()
    return clip_bpe_tokenizer(vocab, merges, CONTEXT_LENGTH)


# ----------------------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------------------


def _check_pretrained(path: Path) -> Path:
    p = Path(path)
    if not p.is_dir():
        raise ExportError(f"--pretrained {path}: no such folder")
    for sub, cls in (("unet", "UNet2DConditionModel"), ("vae", "AutoencoderKL"), ("text_encoder", None)):
        cfg = p / sub / "config.json"
        if not cfg.exists():
            raise ExportError(f"--pretrained {path}: missing {sub}/config.json (expected a diffusers SD folder)")
        data = json.loads(cfg.read_text())
        if cls and data.get("_class_name") != cls:
            raise ExportError(f"--pretrained {path}: {sub}/config.json is {data.get('_class_name')!r}, expected {cls}")
        if not cls and data.get("model_type") not in ("clip_text_model",):
            raise ExportError(f"--pretrained {path}: text_encoder is {data.get('model_type')!r}, "
                              "expected 'clip_text_model'")
    return p


def build_sd(size: str = "tiny", seed: int = 0, pretrained: Path | None = None, with_vae_encoder: bool = True):
    """dict(tokenizer, text_encoder, unet, vae, scheduler_config, info). Random weights come from `seed`, so
    `lora --random-init --seed S` and `sd --random-init --seed S` build the same base model."""
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if pretrained is not None:
        p = _check_pretrained(pretrained)
        try:
            unet = UNet2DConditionModel.from_pretrained(p, subfolder="unet")
            vae = AutoencoderKL.from_pretrained(p, subfolder="vae")
            text = CLIPTextModel.from_pretrained(p, subfolder="text_encoder", attn_implementation="eager")
        except Exception as exc:
            raise ExportError(f"--pretrained {p}: could not load the SD components: {exc}") from exc
        tok = sd_tokenizer(size, p)
        sched_path = p / "scheduler" / "scheduler_config.json"
        sched = json.loads(sched_path.read_text()) if sched_path.exists() else dict(SD15_SCHEDULER)
        source = str(p)
    else:
        spec = SD_SIZES[size]
        tok = sd_tokenizer(size)
        vocab_size = tok.get_vocab_size()
        eos = tok.token_to_id("<|endoftext|>")
        bos = tok.token_to_id("<|startoftext|>")
        seed_all(seed)
        text = CLIPTextModel(CLIPTextConfig(vocab_size=vocab_size, bos_token_id=bos, eos_token_id=eos, pad_token_id=eos,
                                            attn_implementation="eager", **spec["text"]))
        unet = UNet2DConditionModel(**spec["unet"])
        vae = AutoencoderKL(**spec["vae"])
        sched = dict(SD15_SCHEDULER)
        source = f"random-init ({size}) Stable Diffusion 1.5 architecture"
    for m in (unet, vae, text):
        m.eval()
        m.requires_grad_(False)
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)
    info = dict(source=source, size=size, latent_channels=int(unet.config.in_channels),
                latent_size=int(unet.config.sample_size), vae_scale_factor=int(vae_scale),
                image_size=int(unet.config.sample_size) * vae_scale, scaling_factor=float(vae.config.scaling_factor),
                context_length=CONTEXT_LENGTH, hidden_size=int(text.config.hidden_size),
                time_cond_proj_dim=unet.config.time_cond_proj_dim)
    return dict(tokenizer=tok, text_encoder=text, unet=unet, vae=vae, scheduler_config=sched, info=info)


def lcm_scheduler_config(base: dict) -> dict:
    """diffusers LCMScheduler config derived from the SD scheduler config (what LCM-LoRA pipelines do)."""
    from diffusers import LCMScheduler

    sched = LCMScheduler.from_config({k: v for k, v in base.items() if not k.startswith("_")})
    return json.loads(sched.to_json_string())


def add_random_lcm_lora(unet, rank: int, seed: int, std: float = 0.02):
    """A random LoRA with the LCM-LoRA's shape (targets, rank) fused into the UNet (in place); returns the UNet."""
    import torch
    from peft import LoraConfig

    cfg = LoraConfig(r=rank, lora_alpha=rank, target_modules=LCM_TARGETS, init_lora_weights="gaussian")
    unet.add_adapter(cfg, adapter_name="lcm")
    g = torch.Generator().manual_seed(seed + 7919)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if "lora_B" in name:  # zero-initialised by peft: give the adapter a visible effect
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return unet


def fuse_and_unload(unet):
    """Merge every active LoRA into the base weights and remove the LoRA layers (diffusers fuse_lora + unload)."""
    unet.fuse_lora()
    unet.unload_lora()
    return unet


def load_lcm_lora(unet, path: Path):
    p = Path(path)
    if not p.exists():
        raise ExportError(f"--lcm-lora {p}: no such file or folder")
    _load_diffusers_lora(unet, p, "lcm", "--lcm-lora")
    return unet


def _load_diffusers_lora(unet, path: Path, adapter_name: str, flag: str) -> None:
    """A diffusers / kohya LoRA file or folder (pytorch_lora_weights.safetensors, as published for lcm-lora-sdv1-5)
    into the UNet as an unfused adapter; key formats are converted by diffusers' SD LoRA loader."""
    from diffusers.loaders.lora_pipeline import StableDiffusionLoraLoaderMixin

    try:
        state, alphas = StableDiffusionLoraLoaderMixin.lora_state_dict(str(path))
        unet_state = {k: v for k, v in state.items() if k.startswith("unet.")}
        if not unet_state:
            raise ValueError("no UNet LoRA weights in it")
        unet.load_lora_adapter(unet_state, network_alphas=alphas, prefix="unet", adapter_name=adapter_name)
    except Exception as exc:
        raise ExportError(f"{flag} {path}: could not load the LoRA into this UNet: {exc}") from exc


def apply_domain_lora(unet, path: Path):
    """Returns the UNet with the domain LoRA (peft save_pretrained folder from `cxr-export lora`, or a diffusers
    pytorch_lora_weights.safetensors folder) fused in."""
    p = Path(path)
    if (p / "adapter_config.json").exists():
        from peft import PeftModel

        try:
            pm = PeftModel.from_pretrained(unet, str(p))
        except Exception as exc:
            raise ExportError(f"--lora {p}: adapter does not fit this UNet: {exc}") from exc
        return pm.merge_and_unload()
    if p.exists():
        _load_diffusers_lora(unet, p, "domain", "--lora")
        return fuse_and_unload(unet)
    raise ExportError(f"--lora {p}: no such folder")


# ----------------------------------------------------------------------------------------------------------------
# ONNX wrappers
# ----------------------------------------------------------------------------------------------------------------


def wrappers(text_encoder, unet, vae):
    import torch

    class TextEncoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = text_encoder

        def forward(self, input_ids):
            return self.m(input_ids=input_ids).last_hidden_state

    class UNet(torch.nn.Module):
        def __init__(self, u):
            super().__init__()
            self.m = u

        def forward(self, sample, timestep, encoder_hidden_states, timestep_cond=None):
            return self.m(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond,
                          return_dict=False)[0]

    class VaeDecoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = vae

        def forward(self, latent_sample):
            return self.m.decode(latent_sample, return_dict=False)[0]

    return TextEncoder().eval(), (lambda u: UNet(u).eval()), VaeDecoder().eval()


def unet_sample_inputs(info: dict, seed: int, batch: int = 1):
    rng = np.random.default_rng(seed)
    s = info["latent_size"]
    feeds = {
        "sample": rng.standard_normal((batch, info["latent_channels"], s, s)).astype(np.float32),
        "timestep": np.full((batch,), 759.0, np.float32),
        "encoder_hidden_states": rng.standard_normal((batch, CONTEXT_LENGTH, info["hidden_size"])).astype(np.float32),
    }
    if info.get("time_cond_proj_dim"):
        feeds["timestep_cond"] = rng.standard_normal((batch, info["time_cond_proj_dim"])).astype(np.float32)
    return feeds


def _to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    model = onnx.load(str(src), load_external_data=True)
    # Resize's scales must stay float32; normalisations are safer in fp32 too
    block = list(DEFAULT_OP_BLOCK_LIST) + ["Resize", "GroupNormalization", "InstanceNormalization"]
    resize_inputs = {i for n in model.graph.node if n.op_type == "Resize" for i in n.input[1:]}
    keep = [n.name for n in model.graph.node if n.op_type == "Constant" and set(n.output) & resize_inputs]
    model16 = convert_float_to_float16(model, keep_io_types=True, disable_shape_infer=True, op_block_list=block,
                                       node_block_list=keep)
    from .onnx_utils import save_model

    save_model(model16, dst)  # external data `<name>.onnx.data` past 2 GB


def export_sd(parts: dict, out_dir: Path, model_id: str, weights: str, unet_lora=None, atol: float = 1e-4,
              rtol: float = 1e-5, seed: int = 0, fp16: bool = False, write_manifest: bool = True,
              lora_info: dict | None = None, lcm_source: str = "", unet_scaled=None,
              unet_layout: str = "two-graph") -> dict:
    """parts: build_sd() output with parts['unet'] already LCM-fused; unet_lora: that plus the domain LoRA;
    unet_scaled: (unet, set_scale) from scaled_lora_unet (layouts 'scaled' and 'both'). unet_layout 'two-graph'
    writes unet (+ unet_lora), 'scaled' writes unet_scaled only, 'both' all three."""
    if unet_layout not in UNET_LAYOUTS:
        raise ExportError(f"--unet-layout {unet_layout!r}: choose from {', '.join(UNET_LAYOUTS)}")
    if unet_layout != "two-graph" and unet_scaled is None:
        raise ExportError(f"--unet-layout {unet_layout} needs a domain LoRA (--lora DIR): the scale has nothing to scale")
    import torch

    torch_threads(parts["unet"], parts["vae"], parts["text_encoder"])
    out_dir = Path(out_dir)
    info = parts["info"]
    tok = parts["tokenizer"]
    te, unet_w, vd = wrappers(parts["text_encoder"], parts["unet"], parts["vae"])
    graphs = {}
    if unet_layout != "scaled":
        graphs["unet"] = unet_w(parts["unet"])
        if unet_lora is not None:
            graphs["unet_lora"] = unet_w(unet_lora)
    ids = encode_ids(tok, SAMPLE_PROMPTS[:2])
    ufeeds = unet_sample_inputs(info, seed)
    unames = list(ufeeds)
    scaled = None
    if unet_layout != "two-graph":
        # references: lora_scale 0 -> the base UNet, 1 -> the LoRA-merged UNet, and a batch mixing both
        base_ref = unet_w(parts["unet"])
        lora_ref = unet_w(unet_lora) if unet_lora is not None else None
        sfeeds = {**unet_sample_inputs(info, seed, batch=2)}
        snames = ["sample", "timestep", "encoder_hidden_states", "lora_scale"] + (
            ["timestep_cond"] if "timestep_cond" in sfeeds else [])
        scaled = dict(module=scaled_unet_wrapper(*unet_scaled), names=snames, feeds=sfeeds)
    rng = np.random.default_rng(seed + 1)
    lat = rng.standard_normal((1, info["latent_channels"], info["latent_size"], info["latent_size"])).astype(np.float32)
    with torch.no_grad():
        ref_text = te(torch.from_numpy(ids)).numpy()
        ref_unet = {k: g(*[torch.from_numpy(ufeeds[n]) for n in unames]).numpy() for k, g in graphs.items()}
        ref_vae = vd(torch.from_numpy(lat)).numpy()
        if scaled is not None:
            f = {k: torch.from_numpy(v) for k, v in scaled["feeds"].items()}
            args = [f[n] for n in ("sample", "timestep", "encoder_hidden_states")]
            kw = {"timestep_cond": f["timestep_cond"]} if "timestep_cond" in f else {}
            b0 = base_ref.m(*args, return_dict=False, **kw)[0].numpy()
            b1 = lora_ref.m(*args, return_dict=False, **kw)[0].numpy() if lora_ref is not None else None
            scaled["cases"] = {"0,0": (np.array([0, 0], np.float32), b0)}
            if b1 is not None:
                scaled["cases"]["1,1"] = (np.array([1, 1], np.float32), b1)
                scaled["cases"]["0,1"] = (np.array([0, 1], np.float32), np.concatenate([b0[:1], b1[1:]]))
            scaled["feeds"]["lora_scale"] = scaled["cases"]["0,1" if b1 is not None else "0,0"][0]
    parity: dict[str, float] = {}
    dyn_unet = {"sample": {0: "batch", 2: "height", 3: "width"}, "timestep": {0: "batch"},
                "encoder_hidden_states": {0: "batch"}, "timestep_cond": {0: "batch"},
                "out_sample": {0: "batch", 2: "height", 3: "width"}}
    with atomic_dir(out_dir / model_id) as tmp:
        export_onnx(te, (torch.from_numpy(ids),), tmp / "text_encoder.onnx", ["input_ids"], ["last_hidden_state"],
                    {"input_ids": {0: "batch"}, "last_hidden_state": {0: "batch"}})
        parity["text_encoder"] = check_parity("text_encoder", {"last_hidden_state": ref_text},
                                              run_onnx(tmp / "text_encoder.onnx", {"input_ids": ids}), atol, rtol)
        for k, g in graphs.items():
            export_onnx(g, tuple(torch.from_numpy(ufeeds[n]) for n in unames), tmp / f"{k}.onnx", unames,
                        ["out_sample"], {n: dyn_unet[n] for n in unames + ["out_sample"]})
            parity[k] = check_parity(k, {"out_sample": ref_unet[k]}, run_onnx(tmp / f"{k}.onnx", ufeeds), atol, rtol)
        if scaled is not None:
            sf = scaled["feeds"]
            export_onnx(scaled["module"], tuple(torch.from_numpy(sf[n]) for n in scaled["names"]), tmp / "unet_scaled.onnx",
                        scaled["names"], ["out_sample"],
                        {n: {**dyn_unet, "lora_scale": {0: "batch"}}[n] for n in scaled["names"] + ["out_sample"]})
            worst = 0.0
            for label, (scale, ref) in scaled["cases"].items():
                got = run_onnx(tmp / "unet_scaled.onnx", {**{k: v for k, v in sf.items() if k != "lora_scale"},
                                                          "lora_scale": scale})
                worst = max(worst, check_parity(f"unet_scaled (lora_scale {label})", {"out_sample": ref}, got, atol,
                                                rtol))
            parity["unet_scaled"] = worst
            graphs["unet_scaled"] = None  # written above; listed with the others
        export_onnx(vd, (torch.from_numpy(lat),), tmp / "vae_decoder.onnx", ["latent_sample"], ["sample"],
                    {"latent_sample": {0: "batch", 2: "height", 3: "width"}, "sample": {0: "batch", 2: "h", 3: "w"}})
        parity["vae_decoder"] = check_parity("vae_decoder", {"sample": ref_vae},
                                             run_onnx(tmp / "vae_decoder.onnx", {"latent_sample": lat}), atol, rtol)
        tok.save(str(tmp / "tokenizer.json"))
        sched = lcm_scheduler_config(parts["scheduler_config"])
        write_json(tmp / "scheduler_config.json", sched)
        parity16: dict[str, float] = {}
        if fp16:
            for k in ["text_encoder", *graphs, "vae_decoder"]:
                _to_fp16(tmp / f"{k}.onnx", tmp / f"{k}_fp16.onnx")
            parity16["text_encoder"] = check_parity("text_encoder fp16", {"last_hidden_state": ref_text}, run_onnx(
                tmp / "text_encoder_fp16.onnx", {"input_ids": ids}), 5e-2, 2e-2)
            for k in graphs:
                if k == "unet_scaled":
                    sf = scaled["feeds"]
                    scale, ref = scaled["cases"]["0,1" if "0,1" in scaled["cases"] else "0,0"]
                    parity16[k] = check_parity(f"{k} fp16", {"out_sample": ref}, run_onnx(
                        tmp / f"{k}_fp16.onnx", {**sf, "lora_scale": scale}), 5e-2, 2e-2)
                    continue
                parity16[k] = check_parity(f"{k} fp16", {"out_sample": ref_unet[k]},
                                           run_onnx(tmp / f"{k}_fp16.onnx", ufeeds), 5e-2, 2e-2)
            parity16["vae_decoder"] = check_parity("vae_decoder fp16", {"sample": ref_vae}, run_onnx(
                tmp / "vae_decoder_fp16.onnx", {"latent_sample": lat}), 5e-2, 2e-2)
    final = out_dir / model_id

    def files(suffix: str) -> list[dict]:
        recs = [mf.file_record(out_dir, final / f"text_encoder{suffix}.onnx", "text_encoder")]
        recs += [mf.file_record(out_dir, final / f"{k}{suffix}.onnx", k) for k in graphs]
        recs.append(mf.file_record(out_dir, final / f"vae_decoder{suffix}.onnx", "vae_decoder"))
        recs.append(mf.file_record(out_dir, final / "tokenizer.json", "tokenizer"))
        recs.append(mf.file_record(out_dir, final / "scheduler_config.json", "scheduler_config"))
        return recs

    variants = {"fp32": {"dtype": "fp32", "files": files(""), "parity": mf.parity_record(
        max(parity.values()), f"diffusers/transformers PyTorch, fp32, atol {atol:g} + rtol {rtol:g} x max|ref|")}}
    if fp16:
        variants["fp16"] = {"dtype": "fp16", "files": files("_fp16"), "parity": mf.parity_record(
            max(parity16.values()), "PyTorch fp32 reference, fp16 weights (fp32 I/O), atol 5e-2 + rtol 2e-2")}
    unet_io = {"inputs": unames, "outputs": ["out_sample"]}
    io = {"text_encoder": {"inputs": ["input_ids"], "outputs": ["last_hidden_state"]}, "unet": unet_io,
          "vae_decoder": {"inputs": ["latent_sample"], "outputs": ["sample"]}}
    if "unet_lora" in graphs:
        io["unet_lora"] = unet_io
    if "unet_scaled" in graphs:
        io["unet_scaled"] = {"inputs": scaled["names"], "outputs": ["out_sample"]}
    if "unet" not in graphs:
        del io["unet"]
    config = {
        **{k: info[k] for k in ("latent_channels", "latent_size", "vae_scale_factor", "image_size", "scaling_factor",
                                "context_length", "hidden_size", "time_cond_proj_dim")},
        "tokenizer": "tokenizer.json",
        "scheduler": "scheduler_config.json",
        "scheduler_type": "LCMScheduler",
        "num_inference_steps": 4,
        "guidance_scale": 1.0,
        "timestep_dtype": "float32",
        # which UNet graphs this folder has: two-graph (unet + unet_lora), scaled (unet_scaled + lora_scale), both
        "unet_layout": unet_layout,
        "pad_token_id": int(tok.padding["pad_id"]),
        "bos_token_id": int(tok.token_to_id("<|startoftext|>")),
        "eos_token_id": int(tok.token_to_id("<|endoftext|>")),
        "lcm_lora": lcm_source,
        "domain_lora": lora_info,
        "parity": parity,
        **({"parity_fp16": parity16} if fp16 else {}),
    }
    entry = {
        "id": model_id,
        "name": f"Stable Diffusion 1.5 + LCM-LoRA ({'random weights, ' + info['size'] if weights == 'random-fixture' else 'pretrained'})",
        "family": "sd",
        "task": "text-to-image",
        "weights": weights,
        "license": "CreativeML Open RAIL-M" if weights != "random-fixture" else "MIT (random weights)",
        "source": info["source"],
        "variants": variants,
        "io": io,
        "config": config,
        "card": {"summary": "4-step LCM text-to-image: text_encoder -> unet (x4, LCMScheduler) -> vae_decoder; "
                            + ("unet_lora adds the domain LoRA." if unet_layout == "two-graph" else
                               "unet_scaled holds both sides: lora_scale 0 = base, 1 = domain LoRA.")
                 + (" Random weights: a test fixture, its images mean nothing." if weights == "random-fixture" else ""),
                 "limitations": "Synthetic images are not for clinical use or for training diagnostic models "
                                "without review."},
    }
    if write_manifest:
        mf.upsert_entry(out_dir, entry)
    return entry


UNET_LAYOUTS = ("two-graph", "scaled", "both")


def scaled_lora_unet(unet, lora: Path):
    """A copy of `unet` with the domain LoRA loaded UNFUSED and a runtime scale: returns (unet_copy, set_scale) where
    set_scale(t) (t float32 [batch]) makes every LoRA layer output base(x) + t[i] * scaling * B(A(x)) for sample i.
    Works on the peft LoraLayer modules that both adapter formats load into (peft folder, diffusers safetensors)."""
    import copy

    import torch

    p = Path(lora)
    u = copy.deepcopy(unet)
    if (p / "adapter_config.json").exists():
        from peft import PeftModel

        try:
            u = PeftModel.from_pretrained(u, str(p)).base_model.model
        except Exception as exc:
            raise ExportError(f"--lora {p}: adapter does not fit this UNet: {exc}") from exc
    elif p.exists():
        _load_diffusers_lora(u, p, "domain", "--lora")
    else:
        raise ExportError(f"--lora {p}: no such folder")
    from peft.tuners.lora import LoraLayer

    layers = [m for m in u.modules() if isinstance(m, LoraLayer)]
    if not layers:
        raise ExportError(f"--lora {p}: no LoRA layer was created in the UNet")
    base_scaling = [dict(m.scaling) for m in layers]
    state: dict[str, Any] = {"scale": None}

    def pre_hook(i):
        def hook(module, args):
            x = args[0]
            t = state["scale"].reshape([-1] + [1] * (x.dim() - 1))  # per sample, broadcast over the layer's output
            for k, v in base_scaling[i].items():
                module.scaling[k] = t * v
        return hook

    for i, m in enumerate(layers):
        m.register_forward_pre_hook(pre_hook(i))

    def set_scale(t):
        state["scale"] = t.to(torch.float32)

    u.eval()
    u.requires_grad_(False)
    return u, set_scale


def random_lora_folder(unet, path: Path, seed: int, rank: int = 4, std: float = 0.05) -> Path:
    """A random peft adapter folder (the format `cxr-export lora` writes; targets = lora.LORA_TARGETS, written out here
    because lora.py imports this module) for `--random-init --random-lora`: benchmarks of the scaled layout at full size
    without training a LoRA first."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    pm = get_peft_model(copy.deepcopy(unet), LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                                        target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    gen = torch.Generator().manual_seed(seed + 4242)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    pm.save_pretrained(str(path))
    return Path(path)


def scaled_unet_wrapper(unet, set_scale):
    import torch

    class ScaledUNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = unet

        def forward(self, sample, timestep, encoder_hidden_states, lora_scale, timestep_cond=None):
            set_scale(lora_scale)
            return self.m(sample, timestep, encoder_hidden_states, timestep_cond=timestep_cond, return_dict=False)[0]

    return ScaledUNet().eval()


def prepare(size: str, seed: int, pretrained: Path | None, lcm_lora: Path | None, lora: Path | None,
            random_init: bool):
    """Builds the base SD parts with the LCM-LoRA fused, and (with lora) a second UNet with the domain LoRA too."""
    import copy

    parts = build_sd(size, seed, None if random_init else pretrained)
    unet = parts["unet"]
    if lcm_lora is not None:
        load_lcm_lora(unet, lcm_lora)
        lcm_source = str(lcm_lora)
    elif random_init:
        add_random_lcm_lora(unet, SD_SIZES[size]["lcm_rank"], seed)
        lcm_source = f"random LoRA with the shape of latent-consistency/lcm-lora-sdv1-5 (rank {SD_SIZES[size]['lcm_rank']})"
    else:
        raise ExportError("give --lcm-lora DIR (latent-consistency/lcm-lora-sdv1-5), or --random-init")
    parts["unet"] = fuse_and_unload(unet)
    unet_lora = None
    lora_info = None
    if lora is not None:
        unet_lora = apply_domain_lora(copy.deepcopy(parts["unet"]), lora)
        summary = Path(lora) / "train_summary.json"
        lora_info = {"path": str(lora), **({"summary": json.loads(summary.read_text())} if summary.exists() else {})}
        lora_info.get("summary", {}).pop("losses", None)
    return parts, unet_lora, lora_info, lcm_source


def run(args: argparse.Namespace) -> dict:
    if not args.random_init and not args.pretrained:
        raise ExportError("give --pretrained DIR (diffusers SD 1.5 folder) or --random-init")
    if getattr(args, "random_lora", False):
        if not args.random_init or args.lora is not None:
            raise ExportError("--random-lora goes with --random-init and without --lora")
        import tempfile

        with tempfile.TemporaryDirectory(prefix="cxr-random-lora-") as td:
            args.lora = random_lora_folder(build_sd(args.size, args.seed)["unet"], Path(td) / "lora", args.seed)
            args.random_lora = False
            return run(args)
    parts, unet_lora, lora_info, lcm_source = prepare(args.size, args.seed, args.pretrained, args.lcm_lora, args.lora,
                                                      args.random_init)
    weights = "random-fixture" if args.random_init else "pretrained"
    layout = getattr(args, "unet_layout", "two-graph")
    if layout != "two-graph" and args.lora is None:
        raise ExportError(f"--unet-layout {layout} needs --lora DIR (the domain LoRA the runtime scale applies)")
    unet_scaled = scaled_lora_unet(parts["unet"], args.lora) if layout != "two-graph" else None
    entry = export_sd(parts, args.out_dir, args.model_id, weights, unet_lora=unet_lora, atol=args.atol,
                      seed=args.seed, fp16=args.fp16, lora_info=lora_info, lcm_source=lcm_source,
                      unet_scaled=unet_scaled, unet_layout=layout)
    print(json.dumps({"id": entry["id"], "parity": entry["config"]["parity"]}))
    return entry


def register(subparsers) -> None:
    p = subparsers.add_parser("sd", help="export SD 1.5 + LCM-LoRA (+ domain LoRA) to ONNX",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(p, "sd15-lcm")
    p.add_argument("--pretrained", type=Path, default=None, help="diffusers SD 1.5 folder")
    p.add_argument("--lcm-lora", type=Path, default=None, help="LCM-LoRA folder (lcm-lora-sdv1-5)")
    p.add_argument("--lora", type=Path, default=None, help="domain LoRA folder from `cxr-export lora`")
    p.add_argument("--fp16", action="store_true", help="also write an fp16 variant (*_fp16.onnx, fp32 inputs/outputs)")
    p.add_argument("--random-lora", action="store_true",
                   help="with --random-init: a random rank-4 domain LoRA (to_q/k/v/out), e.g. to benchmark the layouts")
    p.add_argument("--unet-layout", choices=UNET_LAYOUTS, default="two-graph",
                   help="two-graph: unet.onnx + unet_lora.onnx; scaled: one unet_scaled.onnx with a lora_scale input "
                        "(0 = base exactly, 1 = LoRA; needs --lora); both: all three")
    p.set_defaults(func=run)
