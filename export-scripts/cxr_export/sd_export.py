"""ONNX export of the `cxr-export sd` pipeline (sd.py): the wrappers around text encoder, UNet and VAE decoder, their
sample inputs, fp16 conversion, the UNet layouts (plain or with a LoRA-scale input) and export_sd, which writes the
graphs and checks each against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import manifest as mf
from .common import atomic_dir, check_parity, export_onnx, run_onnx, torch_threads, write_json
from .tokenizer_builders import encode_ids
from .errors import ExportError
from .sd_tokenizer import CONTEXT_LENGTH, SAMPLE_PROMPTS
from .sd_models import lcm_scheduler_config


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
