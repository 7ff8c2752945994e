"""cxr-export sd: tiny SD 1.5 + random LCM-LoRA (+ domain LoRA) export, fused == unfused, LCM reference, tokenizers."""

import json

import numpy as np
import pytest
import torch

from conftest import SHARED_PRESENT, skip_or_fail
from cxr_export.cli import main
from cxr_export.errors import ExportError


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """tiny models: one thread is several times faster than two on a busy 2-core machine"""
    import torch

    torch.set_num_threads(1)
    yield


def _unet_inputs(info, seed=0):
    from cxr_export.sd import unet_sample_inputs

    return {k: torch.from_numpy(v) for k, v in unet_sample_inputs(info, seed, batch=2).items()}


def _out(unet, feeds):
    with torch.no_grad():
        return unet(feeds["sample"], feeds["timestep"], feeds["encoder_hidden_states"], return_dict=False)[0]


def test_fused_unet_equals_base_plus_adapters(tmp_path):
    """base+LCM fused == peft-wrapped base with the LCM adapter unfused; then + domain LoRA the same way."""
    import copy

    from peft import PeftModel

    from cxr_export.fixtures import random_domain_lora
    from cxr_export.sd import SD_SIZES, add_random_lcm_lora, apply_domain_lora, build_sd, fuse_and_unload

    parts = build_sd("tiny", seed=0)
    info, base = parts["info"], parts["unet"]
    feeds = _unet_inputs(info)
    y_base = _out(base, feeds)

    lcm = add_random_lcm_lora(copy.deepcopy(base), SD_SIZES["tiny"]["lcm_rank"], seed=0)
    y_lcm_unfused = _out(lcm, feeds)
    y_lcm_fused = _out(fuse_and_unload(lcm), feeds)
    assert not any("lora" in n for n, _ in lcm.named_parameters())
    assert (y_lcm_unfused - y_base).abs().max() > 1e-3  # the adapter does something
    assert (y_lcm_fused - y_lcm_unfused).abs().max() <= 1e-4

    lora_dir = random_domain_lora(base, tmp_path / "lora", seed=0)
    wrapped = PeftModel.from_pretrained(copy.deepcopy(lcm), str(lora_dir))  # unfused domain adapter
    y_dom_unfused = _out(wrapped, feeds)
    y_dom_fused = _out(apply_domain_lora(copy.deepcopy(lcm), lora_dir), feeds)
    assert (y_dom_unfused - y_lcm_fused).abs().max() > 1e-3
    assert (y_dom_fused - y_dom_unfused).abs().max() <= 1e-4


def test_lcm_lora_file_in_kohya_format(tmp_path):
    """--lcm-lora DIR: a pytorch_lora_weights.safetensors with kohya keys (as lcm-lora-sdv1-5 publishes) loads
    into every LCM target and fuses to the same UNet as the adapter it was written from."""
    import copy

    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from cxr_export.sd import add_random_lcm_lora, build_sd, fuse_and_unload, prepare

    parts = build_sd("tiny", seed=0)
    lcm = add_random_lcm_lora(copy.deepcopy(parts["unet"]), 4, seed=3)
    state = {}
    for k, v in get_peft_model_state_dict(lcm, adapter_name="lcm").items():
        module, kind = k.rsplit(".lora_", 1)
        name = "lora_unet_" + module.replace(".", "_")
        state[name + (".lora_down.weight" if kind.startswith("A") else ".lora_up.weight")] = v.contiguous()
        state[name + ".alpha"] = torch.tensor(4.0)
    (tmp_path / "lcm").mkdir()
    save_file(state, str(tmp_path / "lcm" / "pytorch_lora_weights.safetensors"))
    feeds = _unet_inputs(parts["info"])
    want = _out(fuse_and_unload(lcm), feeds)
    got_parts, _, _, src = prepare("tiny", 0, None, tmp_path / "lcm", None, True)
    assert src == str(tmp_path / "lcm")
    assert (_out(got_parts["unet"], feeds) - want).abs().max() <= 1e-5


def test_sd_tiny_export_with_domain_lora(tmp_path):
    from cxr_export.fixtures import random_domain_lora
    from cxr_export.sd import build_sd

    lora_dir = random_domain_lora(build_sd("tiny", seed=0)["unet"], tmp_path / "lora", seed=0)
    out = tmp_path / "models"
    assert main(["sd", "--random-init", "--size", "tiny", "--lora", str(lora_dir), "--out-dir", str(out),
                 "--id", "sd"]) == 0
    e = json.loads((out / "manifest.json").read_text())["models"][0]
    assert e["family"] == "sd" and e["weights"] == "random-fixture"
    par = e["config"]["parity"]
    assert set(par) == {"text_encoder", "unet", "unet_lora", "vae_decoder"} and max(par.values()) <= 1e-4, par
    roles = {f["role"] for f in e["variants"]["fp32"]["files"]}
    assert roles == {"text_encoder", "unet", "unet_lora", "vae_decoder", "tokenizer", "scheduler_config"}
    assert e["io"]["unet"] == {"inputs": ["sample", "timestep", "encoder_hidden_states"], "outputs": ["out_sample"]}
    sched = json.loads((out / "sd" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "LCMScheduler" and sched["beta_schedule"] == "scaled_linear"
    cfg = e["config"]
    assert cfg["latent_size"] == 8 and cfg["image_size"] == 32 and cfg["eos_token_id"] == cfg["pad_token_id"]


def test_fp16_variant(tmp_path):
    from cxr_export.sd import export_sd, prepare

    parts, _, _, src = prepare("tiny", 0, None, None, None, True)
    e = export_sd(parts, tmp_path, "sd16", "random-fixture", fp16=True, lcm_source=src)
    assert "fp16" in e["variants"] and e["variants"]["fp16"]["parity"]["max_abs_diff"] < 5e-2
    assert (tmp_path / "sd16" / "unet_fp16.onnx").stat().st_size < (tmp_path / "sd16" / "unet.onnx").stat().st_size


def test_lcm_reference_matches_diffusers():
    from diffusers import LCMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    from cxr_export import lcm_scheduler as lcm
    from cxr_export.sd import SD15_SCHEDULER, lcm_scheduler_config

    cfg = lcm_scheduler_config(SD15_SCHEDULER)
    sched = LCMScheduler.from_config(cfg)
    sched.set_timesteps(4)
    ts = lcm.timesteps(cfg, 4)
    assert ts == [int(t) for t in sched.timesteps] == [999, 759, 499, 259]
    acp = lcm.alphas_cumprod(cfg)
    assert np.allclose(acp, sched.alphas_cumprod.numpy(), atol=1e-6)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 8, 8)).astype(np.float32)
    xt = torch.from_numpy(x)
    for i, t in enumerate(ts):
        eps = rng.standard_normal(x.shape).astype(np.float32)
        noise = randn_tensor(xt.shape, generator=torch.Generator().manual_seed(i), dtype=torch.float32).numpy()
        out = sched.step(torch.from_numpy(eps), t, xt, generator=torch.Generator().manual_seed(i))
        prev_t = ts[i + 1] if i + 1 < len(ts) else None
        x, den = lcm.step(eps, t, x, noise if prev_t is not None else None, prev_t, acp, cfg)
        assert np.allclose(den, out.denoised.numpy(), atol=1e-5)
        assert np.allclose(x, out.prev_sample.numpy(), atol=1e-5)
        xt = out.prev_sample


def test_tokenizers(tmp_path):
    from cxr_export.sd import SAMPLE_PROMPTS, sd_tokenizer, shared_clip_tokenizer_files, tiny_bpe_vocab

    assert tiny_bpe_vocab() == tiny_bpe_vocab()  # deterministic
    tok = sd_tokenizer("tiny")
    enc = tok.encode(SAMPLE_PROMPTS[0])
    assert len(enc.ids) == 77 and enc.tokens[:4] == ["<|startoftext|>", "a</w>", "chest</w>", "x</w>"]
    assert enc.ids[-1] == tok.token_to_id("<|endoftext|>")
    try:
        vocab, merges = shared_clip_tokenizer_files()
    except ExportError:
        skip_or_fail("the shared CLIP tokenizer files are not available", strict=SHARED_PRESENT)
    from transformers import CLIPTokenizer

    full = sd_tokenizer("full")
    ref = CLIPTokenizer(vocab=str(vocab), merges=str(merges))
    for text in SAMPLE_PROMPTS + ["x" * 400]:
        want = ref(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
        assert full.encode(text).ids == want


def test_wrong_pretrained_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "sd"
    (bad / "unet").mkdir(parents=True)
    (bad / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    out = tmp_path / "models"
    assert main(["sd", "--pretrained", str(bad), "--lcm-lora", str(tmp_path), "--out-dir", str(out)]) == 1
    assert "UNet2DConditionModel" in capsys.readouterr().err
    assert main(["sd", "--random-init", "--size", "tiny", "--lora", str(tmp_path / "nope"),
                 "--out-dir", str(out)]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert not out.exists()


def test_scaled_unet_layout(tmp_path):
    """--unet-layout scaled: one unet_scaled.onnx with lora_scale [b]; 0 gives the base UNet exactly, 1 the
    LoRA-merged UNet, per sample in one batch; scaled without a LoRA is refused."""
    import onnxruntime as ort

    from cxr_export.fixtures import random_domain_lora
    from cxr_export.sd import apply_domain_lora, build_sd, prepare, scaled_lora_unet, unet_sample_inputs

    lora_dir = random_domain_lora(build_sd("tiny", seed=0)["unet"], tmp_path / "lora", seed=0)
    out = tmp_path / "models"
    assert main(["sd", "--random-init", "--size", "tiny", "--lora", str(lora_dir), "--out-dir", str(out),
                 "--id", "sds", "--unet-layout", "scaled"]) == 0
    e = json.loads((out / "manifest.json").read_text())["models"][0]
    roles = {f["role"] for f in e["variants"]["fp32"]["files"]}
    assert "unet_scaled" in roles and "unet" not in roles and "unet_lora" not in roles
    assert e["config"]["unet_layout"] == "scaled" and "unet" not in e["io"]
    assert e["io"]["unet_scaled"]["inputs"] == ["sample", "timestep", "encoder_hidden_states", "lora_scale"]
    parts, unet_lora, _, _ = prepare("tiny", 0, None, None, lora_dir, True)
    info = parts["info"]
    feeds = unet_sample_inputs(info, 3, batch=2)
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    base = _out(parts["unet"], t).numpy()
    lora = _out(unet_lora, t).numpy()
    s = ort.InferenceSession(str(out / "sds" / "unet_scaled.onnx"))
    got0 = s.run(None, {**feeds, "lora_scale": np.zeros(2, np.float32)})[0]
    got01 = s.run(None, {**feeds, "lora_scale": np.array([0, 1], np.float32)})[0]
    assert np.abs(got0 - base).max() <= 2e-6
    assert np.abs(got01[1] - lora[1]).max() <= 2e-6 and np.abs(got01[0] - base[0]).max() <= 2e-6
    assert np.abs(lora - base).max() > 1e-3  # the LoRA does something
    # the torch module itself: scale 0 is the base bit for bit
    u, set_scale = scaled_lora_unet(parts["unet"], lora_dir)
    set_scale(torch.zeros(2))
    assert (_out(u, t).numpy() == base).all()
    assert main(["sd", "--random-init", "--size", "tiny", "--out-dir", str(out), "--id", "x",
                 "--unet-layout", "scaled"]) == 1


def test_guidance_embedding_unet_through_the_app_cli_matches_diffusers(tmp_path, repo_root):
    """A UNet with time_cond_proj_dim (LCM-distilled, guidance as an input): the exported graphs through the app's
    TypeScript pipeline (`npm run generate`, onnxruntime-web wasm) give diffusers' LatentConsistencyModelPipeline
    image for the same seed (PNG, ±1 grey level)."""
    import shutil
    import subprocess

    from diffusers import LatentConsistencyModelPipeline, LCMScheduler, UNet2DConditionModel
    from PIL import Image

    from cxr_export.clip import encode_ids
    from cxr_export.sd import SD_SIZES, build_sd, export_sd, lcm_scheduler_config

    tsx = repo_root / "node_modules" / ".bin" / "tsx"
    assert tsx.exists() and shutil.which("node"), "node_modules (npm ci) is needed: the test drives the app's CLI"
    parts = build_sd("tiny", 0)
    torch.manual_seed(1)
    parts["unet"] = UNet2DConditionModel(**SD_SIZES["tiny"]["unet"], time_cond_proj_dim=32).eval().requires_grad_(False)
    parts["info"]["time_cond_proj_dim"] = 32
    e = export_sd(parts, tmp_path / "models", "tc", "random-fixture")
    assert e["io"]["unet"]["inputs"] == ["sample", "timestep", "encoder_hidden_states", "timestep_cond"]
    assert e["config"]["time_cond_proj_dim"] == 32
    pipe = LatentConsistencyModelPipeline(vae=parts["vae"], text_encoder=parts["text_encoder"], tokenizer=None,
                                          unet=parts["unet"], image_encoder=None, safety_checker=None,
                                          scheduler=LCMScheduler.from_config(lcm_scheduler_config(parts["scheduler_config"])),
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    prompt = "a chest X-ray showing pneumonia"
    with torch.no_grad():
        pe = parts["text_encoder"](torch.from_numpy(encode_ids(parts["tokenizer"], [prompt])))[0]
        ref = pipe(prompt_embeds=pe, num_inference_steps=4, guidance_scale=3.0, output_type="np",
                   generator=torch.Generator().manual_seed(5)).images[0]
    out = tmp_path / "out"
    r = subprocess.run([str(tsx), "app/cli/generate.ts", "--models-dir", str(tmp_path / "models"), "--model", "tc",
                        "--prompt", prompt, "--seed", "5", "--steps", "4", "--guidance", "3", "--side", "base",
                        "--threads", "1", "--out", str(out)], cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    got = np.asarray(Image.open(out / "tc_s5_base.png").convert("RGB")).astype(int)
    want = np.round(ref * 255).astype(int)
    assert np.abs(got - want).max() <= 1
    rec = json.loads((out / "generation.json").read_text())
    assert rec["guidance_scale"] == 3 and rec["seeds"] == [5]
