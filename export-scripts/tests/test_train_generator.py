"""cxr-export train-generator on tiny settings with real Kermany images: every stage runs, learns and resumes; the
LCM-LoRA and the domain LoRA load into the `cxr-export sd` path; the export is parity-checked; eval's numbers."""

import json
from pathlib import Path

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


def _onnx_sessions(folder, names):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    return {k: ort.InferenceSession(str(folder / f"{k}.onnx"), so, providers=["CPUExecutionProvider"]) for k in names}


def test_lcm_sampler_matches_the_numpy_lcm_reference_on_the_same_graphs(pipeline):
    """lcm_sample_onnx (diffusers' LCMScheduler + torch noise) against lcm_scheduler.generate (the NumPy reference
    the TypeScript scheduler is checked with) fed the same exported graphs, latents and step noise."""
    import torch
    from tokenizers import Tokenizer

    from cxr_export import lcm_scheduler
    from cxr_export.train_generator import lcm_sample_onnx

    folder = pipeline["models"] / "cxr-ldm-lcm"
    prompt, n, seed = "a chest X-ray showing pneumonia", 3, 5
    conf = next(m for m in json.loads((folder.parent / "manifest.json").read_text())["models"]
                if m["id"] == "cxr-ldm-lcm")["config"]
    sf, ls = float(conf["scaling_factor"]), int(conf["latent_size"])
    cfg = json.loads((folder / "scheduler_config.json").read_text())
    graph = "unet" if (folder / "unet.onnx").exists() else "unet_scaled"
    sess = _onnx_sessions(folder, ("text_encoder", graph, "vae_decoder"))
    ids = np.array([Tokenizer.from_file(str(folder / "tokenizer.json")).encode(prompt).ids], np.int64)
    states = np.repeat(sess["text_encoder"].run(None, {"input_ids": ids})[0], n, 0)

    def unet_fn(x, t, st):
        feeds = {"sample": x, "timestep": t, "encoder_hidden_states": st}
        if graph == "unet_scaled":
            feeds["lora_scale"] = np.zeros((len(x),), np.float32)
        return sess[graph].run(None, feeds)[0]

    def vae_fn(z):  # the sampler averages the decoder's channels before clipping: the same here
        return sess["vae_decoder"].run(None, {"latent_sample": z})[0].mean(1, keepdims=True)

    latents = torch.randn((n, 4, ls, ls), generator=torch.Generator().manual_seed(seed)).numpy()
    for steps in (2, 4, 8):
        got = lcm_sample_onnx(folder, "unet", prompt, n, steps, seed=seed)
        assert got.shape == (n, 16, 16) and got.dtype == np.float32
        gs = torch.Generator().manual_seed(seed * 1000)  # the sampler's step-noise stream of its first batch
        noises = [torch.randn((n, 4, ls, ls), generator=gs).numpy() for _ in range(steps - 1)]
        ref = lcm_scheduler.generate(unet_fn, vae_fn, states, latents, noises, cfg, steps, sf)
        assert len(ref["timesteps"]) == steps
        np.testing.assert_allclose(got, ref["image"][:, 0], atol=2e-5)
    np.testing.assert_array_equal(got, lcm_sample_onnx(folder, "unet", prompt, n, 8, seed=seed))  # seeded


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
    edir = pipeline["run"] / "eval"
    m = json.loads((edir / "metrics.json").read_text())
    from cxr_export.train_generator import PNEUMONIA_CAPTION, frechet_distance, lcm_sample_onnx

    # the real test images, classified here independently (PIL 'L' -> 224 bilinear -> (x - 0.5) / 0.5, ONNX
    # Runtime): the fractions eval reports, and the trained classifier gets these real images mostly right
    man = json.loads((repo_root / "public" / "models" / "manifest.json").read_text())
    cls = next(x for x in man["models"] if x["id"] == "pneumonia-vit")
    thr, pos = float(cls["card"]["threshold"]), cls["labels"].index("PNEUMONIA")
    sess = _onnx_sessions(repo_root / "public" / "models" / "pneumonia-vit",
                          [Path(cls["variants"]["fp32"]["files"][0]["path"]).stem])
    sess = next(iter(sess.values()))
    from PIL import Image

    frac = {}
    for lab in ("NORMAL", "PNEUMONIA"):
        files = sorted((pipeline["root"] / "test" / lab).iterdir())
        x = np.stack([np.asarray(Image.open(f).convert("L").resize((224, 224), Image.BILINEAR), np.float32) / 255
                      for f in files])
        x = np.repeat(((x - 0.5) / 0.5)[:, None], 3, 1).astype(np.float32)
        p = sess.run(["probabilities"], {"pixel_values": x})[0][:, pos]
        frac[lab] = float((p >= thr).mean())
        assert m[f"real_test_{lab}_224px_frac_pneumonia"] == pytest.approx(frac[lab])
    assert frac["PNEUMONIA"] >= 0.75 and frac["NORMAL"] <= 0.5, frac
    # each generated set: its cached probabilities and embeddings give the reported numbers, and its images are
    # the sampler's for eval's seed (args.seed + 2024)
    ref = np.load(edir / "ref-16-8-2024.npz")
    te_all = np.concatenate([ref["test_NORMAL_16_e"], ref["test_PNEUMONIA_16_e"]])
    for key in ("lcm2_base", "lcm2_lora", "ddim3_base", "ddim3_lora"):
        z = np.load(edir / f"{key}-8.npz")
        assert m[f"{key}_frac_pneumonia"] == pytest.approx(float((z["p"] >= m["classifier_threshold"]).mean()))
        assert m[f"{key}_mean_p_pneumonia"] == pytest.approx(float(z["p"].mean()))
        assert m[f"{key}_fd_vs_test_all"] == pytest.approx(frechet_distance(z["e"], te_all))
        assert m[f"{key}_fd_vs_test_all"] > 0
    first = np.load(edir / "lcm2_lora-8.npz")["first"]
    np.testing.assert_allclose(first, lcm_sample_onnx(pipeline["models"] / "cxr-ldm-lcm", "unet_lora",
                                                      PNEUMONIA_CAPTION, 8, 2, seed=2024), atol=1e-6)
    assert m["fd_floor_train_vs_test_NORMAL_224px"] > 0
    lora_log = (pipeline["run"] / "lora" / "train_log.jsonl").read_text().splitlines()
    losses = [json.loads(line)["loss"] for line in lora_log if line.strip()]
    assert [c["mean_loss"] for c in m["lora_loss_curve"]] == pytest.approx(losses)  # 8 steps, 8 bins of one step
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
