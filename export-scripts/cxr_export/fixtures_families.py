"""The fixture model of each family for `cxr-export fixtures` (fixtures.py): tiny random classifier, CLIP, SAM and SD
exports (the SD one with a random domain LoRA and diffusers pipeline goldens), each with its goldens."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .clip import DEFAULT_PROMPTS, build_random_biomedclip, encode_ids, export_clip, run_onnx
from .fixtures_goldens import graph_golden, write_golden


IDS = {"classifier": "tiny-vit-classifier", "clip": "tiny-biomedclip", "sam": "tiny-sam", "sd": "tiny-sd"}
CLIP_PROMPTS = [p for ps in DEFAULT_PROMPTS.values() for p in ps] + ["Bilateral lower-lobe opacities, PA view."]


def fixture_classifier(out_dir: Path, gdir: Path, seed: int) -> dict:
    import torch

    from . import classifier

    mid = IDS["classifier"]
    model, pre = classifier.load_model(None, "tiny", seed)
    entry = classifier.export(model, pre, out_dir, mid, weights="random-fixture", seed=seed,
                              source="random-init (tiny) ViTForImageClassification",
                              card={"summary": "Random weights: a test fixture, its outputs mean nothing.",
                                    "limitations": "Not for clinical use."},
                              name="Tiny ViT classifier (random weights)")
    h, w = entry["preprocessing"]["size"]
    x = np.random.default_rng(seed + 11).standard_normal((1, 3, h, w)).astype(np.float32)
    graph = classifier.wrap(model)

    def ref(feeds):
        with torch.no_grad():
            return dict(zip(classifier.OUTPUTS, (t.numpy() for t in graph(torch.from_numpy(feeds["pixel_values"])))))

    diff = graph_golden(gdir / mid, "model", out_dir / mid / "model.onnx", {"pixel_values": x}, ref)
    return {"id": mid, "goldens_torch_diff": diff, "parity": entry["variants"]["fp32"]["parity"]["max_abs_diff"]}


def fixture_clip(out_dir: Path, gdir: Path, seed: int) -> dict:
    import torch

    mid = IDS["clip"]
    model, tok, info = build_random_biomedclip("tiny", seed=seed)
    entry = export_clip(model, tok, info, out_dir, mid, "random-fixture", seed=seed)
    s = info["image_size"]
    g = gdir / mid
    pixels = np.random.default_rng(seed + 21).standard_normal((2, 3, s, s)).astype(np.float32)
    ids = encode_ids(tok, CLIP_PROMPTS)

    def img_ref(feeds):
        with torch.no_grad():
            return {"image_embeds": model.encode_image(torch.from_numpy(feeds["pixel_values"])).numpy()}

    def txt_ref(feeds):
        with torch.no_grad():
            return {"text_embeds": model.encode_text(torch.from_numpy(feeds["input_ids"])).numpy()}

    d1 = graph_golden(g, "image_encoder", out_dir / mid / "image_encoder.onnx", {"pixel_values": pixels}, img_ref)
    d2 = graph_golden(g, "text_encoder", out_dir / mid / "text_encoder.onnx", {"input_ids": ids}, txt_ref,
                      {"texts": CLIP_PROMPTS})
    write_golden(g / "tokenizer_ids.json", {}, {"input_ids": ids},
                 {"tokenizer": "tokenizer.json", "kind": "BERT WordPiece (uncased)", "texts": CLIP_PROMPTS,
                  "context_length": info["context_length"], "pad_token_id": 0})
    return {"id": mid, "goldens_torch_diff": max(d1, d2), "parity": entry["config"]["parity"]}


def fixture_sam(out_dir: Path, gdir: Path, seed: int) -> dict:
    import torch

    from .sam import build_sam, export_sam, sample_inputs

    mid = IDS["sam"]
    adapter, info = build_sam("sam-vit-b", None, "tiny", seed)
    entry = export_sam(adapter, info, out_dir, mid, "random-fixture", seed=seed,
                       source="random-init (tiny) transformers SamModel (sam-vit-b architecture)",
                       name="Tiny SAM (random weights)")
    g = gdir / mid
    x = sample_inputs(info, seed + 31)
    final = out_dir / mid

    def enc_ref(feeds):
        with torch.no_grad():
            return {"image_embeddings": adapter.encoder(torch.from_numpy(feeds["pixel_values"])).numpy()}

    d = graph_golden(g, "image_encoder", final / "image_encoder.onnx", {"pixel_values": x["pixel_values"]}, enc_ref)
    emb = run_onnx(final / "image_encoder.onnx", {"pixel_values": x["pixel_values"]})["image_embeddings"]
    names = ["image_embeddings", "point_coords", "point_labels", "mask_input", "has_mask_input"]

    def dec_ref(feeds):
        with torch.no_grad():
            m, i = adapter.decoder(*[torch.from_numpy(feeds[k]) for k in names])
        return {"masks_low_res": m.numpy(), "iou_predictions": i.numpy()}

    cases = {
        "prompt_decoder_points": (x["point_coords"], x["point_labels"], 0.0),
        "prompt_decoder_box": (x["box_coords"], x["box_labels"], 0.0),
        "prompt_decoder_points_mask": (x["point_coords"], x["point_labels"], 1.0),
    }
    for name, (c, l, has) in cases.items():
        feeds = {"image_embeddings": emb, "point_coords": c, "point_labels": l, "mask_input": x["mask_input"],
                 "has_mask_input": np.array([has], np.float32)}
        d = max(d, graph_golden(g, name, final / "prompt_decoder.onnx", feeds, dec_ref,
                                {"image_embeddings_from": "image_encoder.json outputs"}))
    return {"id": mid, "goldens_torch_diff": d, "parity": entry["config"]["parity"]}


def random_domain_lora(unet, path: Path, seed: int, rank: int = 4, std: float = 0.05) -> Path:
    """A peft adapter folder (same format as `cxr-export lora` writes) with random weights for unet."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    from .lora import LORA_TARGETS

    pm = get_peft_model(copy.deepcopy(unet), LoraConfig(r=rank, lora_alpha=rank, target_modules=LORA_TARGETS,
                                                        init_lora_weights="gaussian"))
    gen = torch.Generator().manual_seed(seed + 4242)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * std)
    pm.save_pretrained(str(path))
    return path


def fixture_sd(out_dir: Path, gdir: Path, seed: int, lora_dir: Path | None = None) -> dict:
    import torch

    from . import lcm_scheduler as lcm
    from .sd import (SAMPLE_PROMPTS, build_sd, export_sd, lcm_scheduler_config, prepare, scaled_lora_unet,
                     unet_sample_inputs)

    mid = IDS["sd"]
    with tempfile.TemporaryDirectory(prefix="cxr-fixture-lora-") as td:
        if lora_dir is None:
            base = build_sd("tiny", seed)["unet"]
            lora_dir = random_domain_lora(base, Path(td) / "lora", seed)
            lora_label = "random peft LoRA (rank 4, to_q/to_k/to_v/to_out.0)"
        else:
            lora_label = str(lora_dir)
        parts, unet_lora, lora_info, lcm_source = prepare("tiny", seed, None, None, lora_dir, True)
        lora_info = {"kind": lora_label}
        # both UNet layouts, so the app's tests cover each: unet + unet_lora, and unet_scaled (lora_scale input)
        unet_scaled = scaled_lora_unet(parts["unet"], lora_dir)
        entry = export_sd(parts, out_dir, mid, "random-fixture", unet_lora=unet_lora, seed=seed, lora_info=lora_info,
                          lcm_source=lcm_source, unet_scaled=unet_scaled, unet_layout="both")
    info = parts["info"]
    final = out_dir / mid
    g = gdir / mid
    tok = parts["tokenizer"]
    ids = encode_ids(tok, SAMPLE_PROMPTS)
    from .sd import wrappers

    te, unet_w, vd = wrappers(parts["text_encoder"], parts["unet"], parts["vae"])
    unets = {"unet": unet_w(parts["unet"]), "unet_lora": unet_w(unet_lora)}

    def te_ref(feeds):
        with torch.no_grad():
            return {"last_hidden_state": te(torch.from_numpy(feeds["input_ids"])).numpy()}

    diffs = [graph_golden(g, "text_encoder", final / "text_encoder.onnx", {"input_ids": ids[:1]}, te_ref,
                          {"texts": SAMPLE_PROMPTS[:1]})]
    write_golden(g / "tokenizer_ids.json", {}, {"input_ids": ids},
                 {"tokenizer": "tokenizer.json", "kind": "CLIP byte-level BPE (fixture vocab)", "texts": SAMPLE_PROMPTS,
                  "context_length": 77, "pad_token_id": int(tok.padding["pad_id"])})
    ufeeds = unet_sample_inputs(info, seed + 41)
    for k, w in unets.items():
        def u_ref(feeds, w=w):
            with torch.no_grad():
                return {"out_sample": w(*[torch.from_numpy(feeds[n]) for n in ufeeds]).numpy()}

        diffs.append(graph_golden(g, k, final / f"{k}.onnx", ufeeds, u_ref))
    sfeeds = {**unet_sample_inputs(info, seed + 43, batch=2), "lora_scale": np.array([0.0, 1.0], np.float32)}

    def s_ref(feeds):
        with torch.no_grad():
            a = [torch.from_numpy(feeds[n]) for n in ("sample", "timestep", "encoder_hidden_states")]
            o0, o1 = (w(*a).numpy() for w in unets.values())
        return {"out_sample": np.concatenate([o0[:1], o1[1:]])}  # sample 0 at scale 0 = base, sample 1 at 1 = LoRA

    diffs.append(graph_golden(g, "unet_scaled", final / "unet_scaled.onnx", sfeeds, s_ref,
                              {"lora_scale": "per sample: 0 = base UNet, 1 = LoRA-merged UNet (reference: those two)"}))
    rng = np.random.default_rng(seed + 51)
    lat = rng.standard_normal((1, 4, info["latent_size"], info["latent_size"])).astype(np.float32)

    def vae_ref(feeds):
        with torch.no_grad():
            return {"sample": vd(torch.from_numpy(feeds["latent_sample"])).numpy()}

    diffs.append(graph_golden(g, "vae_decoder", final / "vae_decoder.onnx", {"latent_sample": lat}, vae_ref))

    # scheduler
    sched = lcm_scheduler_config(parts["scheduler_config"])
    ts = lcm.timesteps(sched, 4)
    write_golden(g / "lcm_timesteps.json", {}, {"timesteps": np.array(ts, np.int64)},
                 {"num_inference_steps": 4, "original_inference_steps": sched.get("original_inference_steps"),
                  "scheduler_config": "scheduler_config.json"})
    acp = lcm.alphas_cumprod(sched)
    sample = rng.standard_normal(lat.shape).astype(np.float32)
    model_output = rng.standard_normal(lat.shape).astype(np.float32)
    noise = rng.standard_normal(lat.shape).astype(np.float32)
    prev, den = lcm.step(model_output, ts[0], sample, noise, ts[1], acp, sched)
    c_skip, c_out = lcm.boundary_scalings(ts[0], float(sched.get("timestep_scaling", 10.0)))
    write_golden(g / "lcm_step.json", {"sample": sample, "model_output": model_output, "noise": noise},
                 {"prev_sample": prev, "denoised": den},
                 {"kind": "lcm-step", "timestep": ts[0], "prev_timestep": ts[1], "alpha_prod_t": float(acp[ts[0]]),
                  "alpha_prod_t_prev": float(acp[ts[1]]), "c_skip": c_skip, "c_out": c_out,
                  "formula": "x0=(sample-sqrt(1-a_t)*eps)/sqrt(a_t); denoised=c_out*x0+c_skip*sample; "
                             "prev=sqrt(a_prev)*denoised+sqrt(1-a_prev)*noise (last step: prev=denoised)"})

    # full 4-step generation, base and LoRA UNet, with ONNX Runtime (what the app runs)
    text_states = run_onnx(final / "text_encoder.onnx", {"input_ids": ids[:1]})["last_hidden_state"]
    latents = rng.standard_normal(lat.shape).astype(np.float32)
    noises = [rng.standard_normal(lat.shape).astype(np.float32) for _ in range(3)]
    vae_fn = lambda z: run_onnx(final / "vae_decoder.onnx", {"latent_sample": z})["sample"]  # noqa: E731
    gen_meta = {"kind": "sd-generation", "prompt": SAMPLE_PROMPTS[0], "num_inference_steps": 4, "guidance_scale": 1.0,
                "scaling_factor": info["scaling_factor"], "timesteps": ts,
                "steps": "text_encoder(input_ids) -> for t in timesteps: eps = unet(x, t, states); "
                         "x = lcm_step(eps, t, x, noise[i]) -> image = clip(vae_decoder(denoised/scaling_factor)/2+0.5,0,1)"}
    for k in unets:
        def unet_fn(x, t, s, k=k):
            return run_onnx(final / f"{k}.onnx", {"sample": x, "timestep": t, "encoder_hidden_states": s})["out_sample"]

        res = lcm.generate(unet_fn, vae_fn, text_states, latents, noises, sched, 4, info["scaling_factor"])
        write_golden(g / f"generation_{'base' if k == 'unet' else 'lora'}.json",
                     {"input_ids": ids[:1], "latents": latents, **{f"noise_{i}": n for i, n in enumerate(noises)}},
                     {"image": res["image"], **{f"denoised_{i}": d for i, d in enumerate(res["denoised"])}},
                     {**gen_meta, "unet": f"{k}.onnx"})
    diffusers_goldens(g, parts, unet_lora, sched, tok, info)
    return {"id": mid, "goldens_torch_diff": max(diffs), "parity": entry["config"]["parity"]}


def diffusers_goldens(g: Path, parts: dict, unet_lora, sched: dict, tok, info: dict) -> None:
    """End-to-end references from diffusers itself: StableDiffusionPipeline with an LCMScheduler (what LCM-LoRA
    pipelines run; LatentConsistencyModelPipeline is the same loop for UNets with time_cond_proj_dim) on the PyTorch
    modules, generator = torch.Generator().manual_seed(seed), output_type 'np'. The prompt embeddings come from the
    PyTorch text encoder on our tokenizer's ids (the pipeline's CLIPTokenizer is bypassed: the fixture has its own
    BPE). Written as pipeline_<name>.json: inputs input_ids (+ negative_input_ids), latents (the generator's first
    draw, for checking the TypeScript generator), outputs image [1, 3, H, W] (NCHW)."""
    import torch
    from diffusers import LCMScheduler, StableDiffusionPipeline

    from .sd import SAMPLE_PROMPTS

    cases = [("base_seed42", "base", SAMPLE_PROMPTS[0], 42, 4, 1.0), ("lora_seed42", "lora", SAMPLE_PROMPTS[0], 42, 4, 1.0),
             ("base_cfg_seed7", "base", SAMPLE_PROMPTS[1], 7, 3, 2.5), ("lora_seed3_steps8", "lora", SAMPLE_PROMPTS[2], 3, 8, 1.0)]
    for name, side, prompt, seed, steps, guidance in cases:
        unet = parts["unet"] if side == "base" else unet_lora
        pipe = StableDiffusionPipeline(vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=None, unet=unet,
                                       scheduler=LCMScheduler.from_config(sched), safety_checker=None,
                                       feature_extractor=None, image_encoder=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        ids = encode_ids(tok, [prompt])
        neg = encode_ids(tok, [""])
        with torch.no_grad():
            pe = parts["text_encoder"](torch.from_numpy(ids))[0]
            ne = parts["text_encoder"](torch.from_numpy(neg))[0]
            shape = (1, info["latent_channels"], info["latent_size"], info["latent_size"])
            latents = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
            img = pipe(prompt_embeds=pe, negative_prompt_embeds=ne if guidance > 1 else None, num_inference_steps=steps,
                       guidance_scale=guidance, generator=torch.Generator().manual_seed(seed), output_type="np").images
        write_golden(g / f"pipeline_{name}.json",
                     {"input_ids": ids, **({"negative_input_ids": neg} if guidance > 1 else {}), "latents": latents.numpy()},
                     {"image": np.transpose(img, (0, 3, 1, 2))},
                     {"kind": "sd-pipeline", "reference": "diffusers StableDiffusionPipeline + LCMScheduler (PyTorch)",
                      "prompt": prompt, "negative_prompt": "", "side": side, "seed": seed, "num_inference_steps": steps,
                      "guidance_scale": guidance, "generator": "torch.Generator('cpu').manual_seed(seed)",
                      "unet": "unet.onnx" if side == "base" else "unet_lora.onnx"})
