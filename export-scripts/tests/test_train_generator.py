"""cxr-export train-generator on tiny settings with real Kermany images: every stage runs, learns and resumes; the
LCM-LoRA and the domain LoRA load into the `cxr-export sd` path; the export is parity-checked; eval's numbers."""

import json

import numpy as np
import pytest

from cxr_export.cli import main
from cxr_export.train_generator import frechet_distance

COMMON = ["--size", "tiny", "--nice", "0", "--log-every", "0", "--seed", "0"]


@pytest.fixture(autouse=True)
def _threads():
    import torch

    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def pipeline(kermany_dir, tmp_path_factory):
    """A tiny run: train/{NORMAL,PNEUMONIA} and test/ of symlinks to 12 + 4 real images per class (nothing
    copied), then vae (30 steps, resumed to 40), vae-decoder (20), unet (60), lcm (4, resumed to 6), lora-data + `cxr-export lora`
    on RUN/base, export into a tmp models root."""
    root = tmp_path_factory.mktemp("kermany")
    for split, n in (("train", 12), ("test", 4)):
        for label in ("NORMAL", "PNEUMONIA"):
            d = root / split / label
            d.mkdir(parents=True)
            for f in sorted((kermany_dir / split / label).iterdir())[:n]:
                (d / f.name).symlink_to(f)
    run = tmp_path_factory.mktemp("run")
    models = tmp_path_factory.mktemp("models")
    base = ["train-generator"]
    args = COMMON + ["--data", str(root), "--run-dir", str(run)]
    out = {"root": root, "run": run, "models": models}
    assert main(base + ["vae"] + args + ["--max-steps", "30", "--lr", "3e-3", "--batch-size", "8"]) == 0
    out["vae_first"] = json.loads((run / "vae" / "summary.json").read_text())
    assert main(base + ["vae"] + args + ["--max-steps", "40", "--lr", "3e-3", "--batch-size", "8"]) == 0
    assert main(base + ["vae-decoder"] + args + ["--max-steps", "20", "--lr", "3e-3", "--batch-size", "8"]) == 0
    assert main(base + ["unet"] + args + ["--max-steps", "60", "--lr", "3e-3", "--batch-size", "16"]) == 0
    assert main(base + ["lcm"] + args + ["--max-steps", "4", "--lr", "1e-3", "--batch-size", "8"]) == 0
    out["lcm_first"] = json.loads((run / "lcm" / "summary.json").read_text())
    assert main(base + ["lcm"] + args + ["--max-steps", "6", "--lr", "1e-3", "--batch-size", "8"]) == 0
    assert main(base + ["lora-data"] + args + ["--max-images", "8"]) == 0
    assert main(["lora", "--pretrained", str(run / "base"), "--data", str(run / "lora-data"), "--out",
                 str(run / "lora"), "--steps", "8", "--lr", "1e-2", "--rank", "4", "--batch-size", "4",
                 "--threads", "1", "--log-every", "0"]) == 0
    assert main(base + ["export"] + args + ["--out-dir", str(models)]) == 0
    return out


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_vae_reconstructs_better_than_init_and_resumes(pipeline):
    run = pipeline["run"]
    first, s = pipeline["vae_first"], json.loads((run / "vae" / "summary.json").read_text())
    assert first["step"] == 30 and s["step"] == 40
    assert first["recon_l1"] < 0.8 * first["recon_l1_init"], first
    assert s["recon_l1_init"] == first["recon_l1_init"]  # the resumed run read the checkpoint, not a fresh init
    assert [r["step"] for r in _log(run / "vae" / "train_log.jsonl")] == list(range(1, 41))
    cfg = json.loads((run / "vae" / "model" / "config.json").read_text())
    assert cfg["latent_channels"] == 4 and cfg["scaling_factor"] == pytest.approx(s["scaling_factor"])


def test_vae_decoder_finetune_keeps_the_latent_space(pipeline):
    from safetensors.torch import load_file

    run = pipeline["run"]
    s = json.loads((run / "vae-decoder" / "summary.json").read_text())
    assert s["step"] == 20 and s["recon_l1"] < s["recon_l1_init"], s
    before = load_file(str(run / "vae" / "model" / "diffusion_pytorch_model.safetensors"))
    after = load_file(str(run / "base" / "vae" / "diffusion_pytorch_model.safetensors"))  # export copied it in
    enc = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert enc and all(np.array_equal(before[k].numpy(), after[k].numpy()) for k in enc)
    assert any(not np.array_equal(before[k].numpy(), after[k].numpy()) for k in before if k.startswith("decoder."))


def test_unet_loss_falls(pipeline):
    losses = [r["loss"] for r in _log(pipeline["run"] / "unet" / "train_log.jsonl")]
    assert len(losses) == 60
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15]), (np.mean(losses[:15]), np.mean(losses[-15:]))


def test_lcm_distillation_resumes_and_writes_an_lcm_lora(pipeline):
    run = pipeline["run"]
    assert pipeline["lcm_first"]["step"] == 4
    assert [r["step"] for r in _log(run / "lcm" / "train_log.jsonl")] == list(range(1, 7))
    from safetensors.torch import load_file

    w = load_file(str(run / "lcm" / "lora" / "pytorch_lora_weights.safetensors"))
    assert w and all(k.startswith("unet.") for k in w)
    assert any(v.abs().max() > 0 for k, v in w.items() if "lora_B" in k)  # B starts at 0: it trained
    # the file read back by `cxr-export sd --lcm-lora` and fused is the trained student (every adapted layer)
    import copy

    import torch
    from peft import LoraConfig

    from cxr_export.sd import LCM_TARGETS, fuse_and_unload, load_lcm_lora
    from cxr_export.train_generator import load_base

    unet = load_base(run)["unet"]
    student = copy.deepcopy(unet)
    rank = json.loads((run / "lcm" / "summary.json").read_text())["rank"]
    student.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=LCM_TARGETS))
    missing = student.load_state_dict(torch.load(run / "lcm" / "ckpt.pt", weights_only=False)["model"], strict=False)
    assert not missing.unexpected_keys
    fused = fuse_and_unload(load_lcm_lora(copy.deepcopy(unet), run / "lcm" / "lora"))
    g = torch.Generator().manual_seed(1)
    x, c = torch.randn((2, 4, 8, 8), generator=g), torch.randn((2, 77, 32), generator=g)
    with torch.no_grad():
        ref = student(x, torch.tensor([99.0, 899.0]), c).sample
        assert float((fused(x, torch.tensor([99.0, 899.0]), c).sample - ref).abs().max()) < 1e-4


def test_lcm_sampler_shapes(pipeline):
    from cxr_export.train_generator import lcm_sample_onnx

    folder = pipeline["models"] / "cxr-ldm-lcm"
    for steps in (2, 4, 8):
        base = lcm_sample_onnx(folder, "unet", "a chest X-ray showing pneumonia", 3, steps, seed=5)
        assert base.shape == (3, 16, 16) and base.dtype == np.float32
        assert 0 <= base.min() and base.max() <= 1 and np.isfinite(base).all()
    again = lcm_sample_onnx(folder, "unet", "a chest X-ray showing pneumonia", 3, 8, seed=5)
    np.testing.assert_array_equal(base, again)  # seeded


def test_domain_lora_merges_within_1e4(pipeline):
    import copy

    import torch
    from peft import PeftModel

    from cxr_export.sd import apply_domain_lora
    from cxr_export.train_generator import load_base

    parts = load_base(pipeline["run"])
    unet = parts["unet"]
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn((2, 4, 8, 8), generator=g), torch.tensor([10.0, 700.0])
    c = torch.randn((2, 77, 32), generator=g)
    with torch.no_grad():
        ref_base = unet(x, t, c).sample
        peft = PeftModel.from_pretrained(copy.deepcopy(unet), str(pipeline["run"] / "lora"))
        ref_lora = peft(x, t, c).sample  # unmerged: base + B A x
        merged = apply_domain_lora(copy.deepcopy(unet), pipeline["run"] / "lora")(x, t, c).sample
    assert float((merged - ref_lora).abs().max()) < 1e-4
    assert float((merged - ref_base).abs().max()) > 1e-4  # the LoRA changes the UNet


def test_export_is_trained_sd_layout(pipeline):
    models = pipeline["models"]
    entry = next(m for m in json.loads((models / "manifest.json").read_text())["models"] if m["id"] == "cxr-ldm-lcm")
    assert entry["weights"] == "trained" and entry["family"] == "sd"
    roles = {f["role"] for f in entry["variants"]["fp32"]["files"]}
    assert {"text_encoder", "vae_decoder", "tokenizer", "scheduler_config"} <= roles
    assert "unet" in roles or "unet_scaled" in roles
    assert max(entry["config"]["parity"].values()) < 1e-4
    assert entry["config"]["latent_size"] == 8 and entry["config"]["image_size"] == 16
    assert "not a medical image source" in entry["card"]["summary"].lower()
    sched = json.loads((models / "cxr-ldm-lcm" / "scheduler_config.json").read_text())
    assert sched["_class_name"] == "LCMScheduler"


def test_eval_measures(pipeline, repo_root, tmp_path):
    grid = tmp_path / "grid.png"
    assert main(["train-generator", "eval"] + COMMON + [
        "--data", str(pipeline["root"]), "--run-dir", str(pipeline["run"]), "--out-dir", str(pipeline["models"]),
        "--classifier-dir", str(repo_root / "public" / "models"), "--n-eval", "8", "--lcm-steps", "2",
        "--ddim-steps", "3", "--grid", str(grid)]) == 0
    m = json.loads((pipeline["run"] / "eval" / "metrics.json").read_text())
    for key in ("lcm2_base", "lcm2_lora", "ddim3_base", "ddim3_lora"):
        assert 0 <= m[f"{key}_frac_pneumonia"] <= 1 and m[f"{key}_fd_vs_test_all"] > 0
    assert m["fd_floor_train_vs_test_NORMAL_224px"] > 0 and len(m["lora_loss_curve"]) == 8
    from PIL import Image

    with Image.open(grid) as im:
        assert im.size[1] == 4 * (16 * 2 + 2)


def test_frechet_distance_matches_the_gaussian_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 2.0, (20000, 1))
    b = rng.normal(-1.0, 0.5, (20000, 1))
    assert frechet_distance(a, b) == pytest.approx(4.0 + (2.0 - 0.5) ** 2, rel=0.03)  # (m1-m2)^2 + (s1-s2)^2
    x = rng.normal(size=(500, 6))
    assert abs(frechet_distance(x, x)) < 1e-8
    cov = np.diag([1.0, 4.0, 9.0])
    y = rng.multivariate_normal(np.zeros(3), cov, 40000)
    z = rng.multivariate_normal(np.ones(3), np.eye(3), 40000)
    # diagonal covariances: sum over dims of (mu diff)^2 + (sqrt(s1) - sqrt(s2))^2 = 3 + 0 + 1 + 4
    assert frechet_distance(y, z) == pytest.approx(8.0, rel=0.03)
