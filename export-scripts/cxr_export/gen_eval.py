"""Stage `eval` of `cxr-export train-generator` and its library: the project's classifier (pneumonia-vit, ONNX)
over generated images (LCM 2/4/8 steps from the exported graphs, DDIM of the undistilled UNet) and real ones; the
fraction called PNEUMONIA, the Frechet distance on the classifier's penultimate embedding (FID's formula), the
LoRA's loss curve and an image grid; the numbers go to RUN/eval/metrics.json and the manifest card."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ExportError
from .gen_data import _setup, _write_json, list_split, load_gray
from .gen_export import _card
from .gen_models import GEN_SIZES, PNEUMONIA_CAPTION, ddpm_config, load_base, text_states


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two embedding sets [N,D] (Heusel et al. 2017, the FID formula)
    ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a S_b)^1/2), with Tr((S_a S_b)^1/2) = Tr((A S_b A)^1/2), A = S_a^1/2
    (symmetric eigendecompositions; float64)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(0) - b.mean(0)
    sa, sb = np.atleast_2d(np.cov(a, rowvar=False)), np.atleast_2d(np.cov(b, rowvar=False))
    ev, V = np.linalg.eigh(sa)
    A = (V * np.sqrt(np.clip(ev, 0, None))) @ V.T
    m = A @ sb @ A
    tr = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(mu @ mu + np.trace(sa) + np.trace(sb) - 2 * tr)


class Classifier:
    """public/models/pneumonia-vit (ONNX): pixel_values [b,3,224,224] ((x - 0.5) / 0.5) -> probabilities [b,2],
    embedding [b,D]; PNEUMONIA when P >= the card's validation threshold."""

    def __init__(self, models_dir: Path, model_id: str = "pneumonia-vit"):
        import onnxruntime as ort

        from . import manifest as mf

        entry = next((m for m in mf.load(models_dir)["models"] if m["id"] == model_id), None)
        if entry is None:
            raise ExportError(f"{models_dir}: no {model_id} in manifest.json")
        self.threshold = float(entry.get("card", {}).get("threshold", 0.5))
        self.pos = entry["labels"].index("PNEUMONIA")
        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(str(Path(models_dir) / entry["variants"]["fp32"]["files"][0]["path"]), so,
                                         providers=["CPUExecutionProvider"])

    def __call__(self, gray01: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """gray01 float [N,H,W] in [0,1] at any size (bilinear to 224) -> (P(PNEUMONIA) [N], embedding [N,D])."""
        import torch
        import torch.nn.functional as F

        probs, embs = [], []
        for i in range(0, len(gray01), batch):
            x = torch.from_numpy(np.asarray(gray01[i:i + batch], np.float32))[:, None]
            if x.shape[-1] != 224:
                x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            x = ((x.clamp(0, 1) - 0.5) / 0.5).expand(-1, 3, -1, -1).contiguous().numpy()
            out = self.sess.run(["probabilities", "embedding"], {"pixel_values": x})
            probs.append(out[0][:, self.pos])
            embs.append(out[1])
        return np.concatenate(probs), np.concatenate(embs)


def lcm_sample_onnx(folder: Path, graph: str, prompt: str, n: int, steps: int, seed: int, batch: int = 64):
    """LCM sampling with the exported graphs (what the app runs): [n,H,W] gray in [0,1]. Initial latents and step
    noise come from torch.Generator(seed); the same seed gives the same noise for unet and unet_lora."""
    import onnxruntime as ort
    import torch
    from diffusers import LCMScheduler
    from tokenizers import Tokenizer

    cfg = json.loads((folder / "scheduler_config.json").read_text())
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    # layout "scaled" (one UNet with a runtime lora_scale input [b]: 0 = base, 1 = LoRA) when unet*.onnx is absent
    lora_scale = None
    if not (folder / f"{graph}.onnx").exists() and (folder / "unet_scaled.onnx").exists():
        lora_scale = 1.0 if graph == "unet_lora" else 0.0
        graph = "unet_scaled"
    sess = {k: ort.InferenceSession(str(folder / f"{k}.onnx"), so, providers=["CPUExecutionProvider"])
            for k in ("text_encoder", graph, "vae_decoder")}
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = np.array([tok.encode(prompt).ids], np.int64)
    states = sess["text_encoder"].run(None, {"input_ids": ids})[0]
    man = json.loads((folder.parent / "manifest.json").read_text())
    conf = next(m for m in man["models"] if m["id"] == folder.name)["config"]
    sf, ls = float(conf["scaling_factor"]), int(conf["latent_size"])
    g = torch.Generator().manual_seed(seed)
    lat_all = torch.randn((n, 4, ls, ls), generator=g)
    imgs = []
    for i in range(0, n, batch):
        sch = LCMScheduler.from_config({k: v for k, v in cfg.items() if not k.startswith("_")})
        sch.set_timesteps(steps)
        x = lat_all[i:i + batch]
        b = len(x)
        gs = torch.Generator().manual_seed(seed * 1000 + i)
        for t in sch.timesteps:
            feeds = {"sample": x.numpy(), "timestep": np.full((b,), float(t), np.float32),
                     "encoder_hidden_states": np.repeat(states, b, 0)}
            if lora_scale is not None:
                feeds["lora_scale"] = np.full((b,), lora_scale, np.float32)
            eps = sess[graph].run(None, feeds)[0]
            x = sch.step(torch.from_numpy(eps), t, x, generator=gs).denoised if t == sch.timesteps[-1] else \
                sch.step(torch.from_numpy(eps), t, x, generator=gs).prev_sample
        img = sess["vae_decoder"].run(None, {"latent_sample": (x / sf).numpy().astype(np.float32)})[0]
        imgs.append(np.clip(img.mean(1) / 2 + 0.5, 0, 1))
    return np.concatenate(imgs)


def ddim_sample_torch(unet, vae, tok, text_encoder, prompt: str, n: int, steps: int, guidance: float, seed: int,
                      batch: int = 64):
    """50-step DDIM (eta 0) of an undistilled UNet with classifier-free guidance: [n,H,W] gray in [0,1]."""
    import torch
    from diffusers import DDIMScheduler

    cond = text_states(tok, text_encoder, [prompt])
    uncond = text_states(tok, text_encoder, [""])
    sf = float(vae.config.scaling_factor)
    ls = int(unet.config.sample_size)
    g = torch.Generator().manual_seed(seed)
    lat_all = torch.randn((n, 4, ls, ls), generator=g)
    imgs = []
    with torch.no_grad():
        for i in range(0, n, batch):
            sch = DDIMScheduler.from_config(ddpm_config())
            sch.set_timesteps(steps)
            x = lat_all[i:i + batch]
            b = len(x)
            emb = torch.cat([cond.expand(b, -1, -1), uncond.expand(b, -1, -1)])
            for t in sch.timesteps:
                c, u = unet(torch.cat([x, x]), t, emb).sample.chunk(2)
                x = sch.step(u + guidance * (c - u), t, x).prev_sample
            img = vae.decode(x / sf).sample
            imgs.append(np.clip(img.mean(1).numpy() / 2 + 0.5, 0, 1))
    return np.concatenate(imgs)


def write_grid(path: Path, rows: list[tuple[str, np.ndarray]], cols: int = 8, scale: int = 2) -> None:
    """PNG grid: one row per (label, images [>=cols,H,W] in [0,1]); label text at the left (PIL default font)."""
    from PIL import Image, ImageDraw

    h = rows[0][1].shape[1] * scale
    label_w = 150
    grid = Image.new("L", (label_w + cols * (h + 2), len(rows) * (h + 2)), 255)
    d = ImageDraw.Draw(grid)
    for r, (label, ims) in enumerate(rows):
        d.text((4, r * (h + 2) + h // 2 - 6), label, fill=0)
        for c in range(cols):
            im = Image.fromarray((ims[c] * 255).round().astype(np.uint8)).resize((h, h), Image.NEAREST)
            grid.paste(im, (label_w + c * (h + 2), r * (h + 2)))
    path.parent.mkdir(parents=True, exist_ok=True)
    grid.save(path, optimize=True)


def _real_embeddings(args, clf, size: int, n: int, seed: int) -> dict:
    """Classifier outputs of real images, cached in RUN/eval/ref.npz: all test images per class, and n seeded
    train images per class (the floor), each at native 224 px and round-tripped through the generator's
    resolution (size px, then bilinear back to 224, like the generated images)."""
    path = Path(args.run_dir) / "eval" / f"ref-{size}-{n}-{seed}.npz"
    if path.exists():
        z = np.load(path)
        return {k: z[k] for k in z.files}
    test = list_split(args.data, "test")
    trainrows = list_split(args.data, "train")
    rng = np.random.default_rng(seed)
    out = {}
    for lab in ("NORMAL", "PNEUMONIA"):
        tr = [r for r in trainrows if r[1] == lab]
        tr = [tr[i] for i in sorted(rng.permutation(len(tr))[:n])]
        te = [r for r in test if r[1] == lab]
        for split, rows in (("test", te), ("train", tr)):
            for res in (224, size):
                p, e = clf(load_gray([q for q, _ in rows], res).astype(np.float32) / 255)
                out[f"{split}_{lab}_{res}_p"], out[f"{split}_{lab}_{res}_e"] = p, e
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return out


def stage_eval(args) -> dict:
    """Computes the parts named in --parts (each cached in RUN/eval/<part>.npz; delete RUN/eval after retraining)
    and, with 'report' among them, combines every cached part into RUN/eval/metrics.json, the grid and the
    manifest card."""
    import torch  # noqa: F401  (imported before onnxruntime: one OpenMP runtime)

    from . import manifest as mf
    from .sd import apply_domain_lora

    _setup(args)
    t0 = time.time()
    run = Path(args.run_dir)
    edir = run / "eval"
    edir.mkdir(parents=True, exist_ok=True)
    folder = Path(args.out_dir) / args.model_id
    clf = Classifier(Path(args.classifier_dir or args.out_dir))
    n, seed, size = args.n_eval, args.seed + 2024, GEN_SIZES[args.size]["image_size"]
    n_ddim = args.n_ddim or n
    parts = set(args.parts)
    ref = _real_embeddings(args, clf, size, n, seed)

    def gen(key: str, make) -> None:
        path = edir / f"{key}-{n if key.startswith('lcm') else n_ddim}.npz"
        if path.exists():
            return
        t = time.time()
        imgs = make()
        p, e = clf(imgs)
        np.savez(path, p=p, e=e, first=imgs[:8], wall_s=time.time() - t)
        print(f"{key}: frac PNEUMONIA {(p >= clf.threshold).mean():.3f} ({time.time() - t:.0f}s)", flush=True)

    if "lcm" in parts:
        for steps in args.lcm_steps:
            for side, graph in (("base", "unet"), ("lora", "unet_lora")):
                gen(f"lcm{steps}_{side}", lambda: lcm_sample_onnx(folder, graph, PNEUMONIA_CAPTION, n, steps, seed))
    guidance = 1.0 + (args.w_min + args.w_max) / 2
    for side in ("base", "lora"):
        if f"ddim-{side}" in parts and args.ddim_steps:
            sd_parts = load_base(run)
            unet = sd_parts["unet"]
            if side == "lora":
                unet = apply_domain_lora(copy.deepcopy(unet), run / "lora")
            gen(f"ddim{args.ddim_steps}_{side}", lambda: ddim_sample_torch(
                unet, sd_parts["vae"], sd_parts["tokenizer"], sd_parts["text_encoder"], PNEUMONIA_CAPTION, n_ddim,
                args.ddim_steps, guidance, seed))
    if "report" not in parts:
        return {}
    te_all = np.concatenate([ref[f"test_NORMAL_{size}_e"], ref[f"test_PNEUMONIA_{size}_e"]])
    metrics: dict[str, Any] = {"n_per_side": n, "n_ddim_per_side": n_ddim, "prompt": PNEUMONIA_CAPTION,
                               "classifier": "pneumonia-vit", "classifier_threshold": clf.threshold,
                               "image_size": size, "ddim_guidance_scale": guidance,
                               "lcm_guidance_scale": "1 (CFG distilled in, w ~ U[%g, %g])" % (args.w_min, args.w_max)}
    thr = clf.threshold
    for lab in ("NORMAL", "PNEUMONIA"):
        for res in (224, size):
            metrics[f"real_test_{lab}_{res}px_frac_pneumonia"] = float((ref[f"test_{lab}_{res}_p"] >= thr).mean())
            metrics[f"real_train_{lab}_{res}px_frac_pneumonia"] = float((ref[f"train_{lab}_{res}_p"] >= thr).mean())
            metrics[f"fd_floor_train_vs_test_{lab}_{res}px"] = frechet_distance(ref[f"train_{lab}_{res}_e"],
                                                                                ref[f"test_{lab}_{res}_e"])
        metrics[f"fd_floor_train_{lab}_vs_test_all_{size}px"] = frechet_distance(ref[f"train_{lab}_{size}_e"], te_all)
    keep: dict[str, np.ndarray] = {}
    keys = [f"lcm{s}_{side}" for s in args.lcm_steps for side in ("base", "lora")]
    keys += [f"ddim{args.ddim_steps}_{side}" for side in ("base", "lora")] if args.ddim_steps else []
    for key in keys:
        path = edir / f"{key}-{n if key.startswith('lcm') else n_ddim}.npz"
        if not path.exists():
            continue
        z = np.load(path)
        p, e = z["p"], z["e"]
        keep[key] = z["first"]
        metrics[f"{key}_frac_pneumonia"] = float((p >= thr).mean())
        metrics[f"{key}_mean_p_pneumonia"] = float(p.mean())
        metrics[f"{key}_fd_vs_test_NORMAL"] = frechet_distance(e, ref[f"test_NORMAL_{size}_e"])
        metrics[f"{key}_fd_vs_test_PNEUMONIA"] = frechet_distance(e, ref[f"test_PNEUMONIA_{size}_e"])
        metrics[f"{key}_fd_vs_test_all"] = frechet_distance(e, te_all)
        metrics[f"{key}_sample_wall_s"] = round(float(z["wall_s"]), 1)
    # the LoRA's loss curve: mean loss per bin of its train_log.jsonl
    lora_log = run / "lora" / "train_log.jsonl"
    if lora_log.exists():
        losses = [json.loads(line)["loss"] for line in lora_log.read_text().splitlines() if line.strip()]
        nb = min(20, len(losses))
        edges = np.linspace(0, len(losses), nb + 1).astype(int)
        metrics["lora_loss_curve"] = [{"steps": f"{edges[i] + 1}-{edges[i + 1]}",
                                       "mean_loss": float(np.mean(losses[edges[i]:edges[i + 1]]))} for i in range(nb)]
    metrics["report_wall_s"] = round(time.time() - t0, 1)
    _write_json(edir / "metrics.json", metrics)
    rows = [(f"{k.split('_')[0].upper()} {k.split('_')[1]}", v) for k, v in keep.items()]
    if args.grid and rows:
        write_grid(Path(args.grid), rows)
    man = mf.load(Path(args.out_dir))
    entry = next((m for m in man["models"] if m["id"] == args.model_id), None)
    if entry is not None:  # the manifest card gets the numbers
        entry.update(_card(run, metrics))
        mf.upsert_entry(Path(args.out_dir), entry)
    print(json.dumps({k: v for k, v in metrics.items() if k != "lora_loss_curve"}, indent=1), flush=True)
    return metrics
