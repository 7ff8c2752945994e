"""Training loop, loss, validation and resource measurement of `cxr-export clip-finetune`.

Loss: SigLIP's pairwise sigmoid loss (Zhai et al. 2023, arXiv:2303.15343, eq. 1: -1/|B| sum_ij log sigmoid(z_ij
(t x_i.y_j + b))) with label-derived targets as in cxr-clip's own training (MedCLIP, Wang et al. 2022: an image and a
caption of the same label are a positive pair, z_ij = +1, whatever their batch positions; otherwise z_ij = -1).

Images: the image tower's locked part (embeddings + locked ViT blocks; for qlora in NF4) runs once per image before
training (LiT); every step runs the trainable part (unlocked blocks + head) and the text tower.

Reproducible and resumable: step s draws its batch and captions from numpy default_rng([seed, s]); the learning
rate depends on s only (linear warmup, then constant: a time budget may end the run at any step); the checkpoint
holds the trainable tensors, the AdamW state, the step and the history, so a resumed run ends where an
uninterrupted one does.
"""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path

import numpy as np

from .clip_finetune_data import TASKS, heldout_prompts
from .clip_finetune_peft import trainable_parameters
from .common import load_ckpt, save_ckpt
from .errors import ExportError
from .vit import roc_auc


# --- resources ---------------------------------------------------------------------------------------------------

def reset_peak_rss() -> bool:
    """Resets the kernel's peak-RSS mark of this process (writes 5 to /proc/self/clear_refs, Linux >= 4.0), so that
    peak_rss_mib() afterwards measures from here. False where that is not possible (then the peak is the process's)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> float:
    """Peak resident set size of this process in MiB: VmHWM of /proc/self/status (reset by reset_peak_rss), else
    resource.getrusage's ru_maxrss (KiB on Linux)."""
    try:
        m = re.search(r"VmHWM:\s+(\d+)\s+kB", Path("/proc/self/status").read_text())
        if m:
            return int(m.group(1)) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def tensor_bytes(t) -> int:
    """Storage bytes of a tensor; an NF4Tensor counts its packed 4-bit data and its quantized scalers."""
    inner = getattr(t, "quantized_data", None)
    if inner is not None:
        return sum(x.numel() * x.element_size() for x in (t.quantized_data, t.quantized_scalers,
                                                           t.quantization_factor, t.scaler_mean))
    return t.numel() * t.element_size()


def training_state_mib(module, opt) -> dict:
    """MiB of what training holds besides activations: parameters (NF4 packed), gradients, AdamW moments."""
    import torch

    params = list(module.parameters())
    w = sum(tensor_bytes(p.data if type(p.data) is torch.Tensor else p) for p in params)
    g = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    o = sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
            if isinstance(v, torch.Tensor) and v.dim() > 0)
    mib = 1 << 20
    return {"weights": round(w / mib, 2), "grads": round(g / mib, 2), "optimizer": round(o / mib, 2),
            "total": round((w + g + o) / mib, 2)}


# --- loss and evaluation -------------------------------------------------------------------------------------------

def siglip_label_loss(img, txt, y_img, y_txt, logit_scale, logit_bias):
    """img [B,D], txt [C,D] unnormalized embeddings; y_img [B], y_txt [C] integer labels; logit_scale (log t) and
    logit_bias scalars. Returns the scalar loss -1/B sum_ij log sigmoid(z_ij (t cos_ij + b)), z_ij = +1 when the
    labels agree, else -1."""
    import torch
    import torch.nn.functional as F

    img = F.normalize(img, dim=-1)
    txt = F.normalize(txt, dim=-1)
    logits = img @ txt.T * logit_scale.exp() + logit_bias
    z = torch.where(y_img[:, None] == y_txt[None, :], 1.0, -1.0)
    return -F.logsigmoid(z * logits).sum() / img.shape[0]


def locked_features(inner, pixels: np.ndarray, batch: int = 32):
    """float32 [N,T,H] hidden states of the image tower's locked part (no grad), computed batch by batch."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(pixels), batch):
            out.append(inner.vision.forward_locked(torch.from_numpy(pixels[s:s + batch])))
    return torch.cat(out)


def embed(inner, feats, ids, batch: int = 64):
    """(image embeddings [N,D] from locked features, text embeddings [P,D] from ids), no grad, float32 numpy."""
    import torch

    with torch.no_grad():
        im = torch.cat([inner.vision.forward_unlocked(feats[s:s + batch]) for s in range(0, len(feats), batch)])
        tx = inner.encode_text(ids)
    return im.numpy(), tx.numpy()


def zero_shot_metrics(img: np.ndarray, txt: np.ndarray, prompt_label: np.ndarray, y: np.ndarray,
                      scale: float) -> dict:
    """CLIP zero-shot with prompt ensembling (Radford et al. 2021, sec. 3.1.4): per label the mean of its
    L2-normalized prompt embeddings, renormalized; probabilities softmax(scale cos). img [N,D], txt [P,D],
    prompt_label [P] label index of each prompt, y [N]. Returns {auc (label 0 = positive), accuracy (argmax)}."""
    def l2(a):
        return a / np.linalg.norm(a, axis=-1, keepdims=True)

    labels = sorted(set(int(v) for v in prompt_label))
    cls = l2(np.stack([l2(txt[prompt_label == k]).mean(0) for k in labels]))
    logits = scale * l2(img) @ cls.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    return {"auc": round(roc_auc(y == 0, p[:, 0]), 4), "accuracy": round(float((p.argmax(1) == y).mean()), 4)}


def prompt_ids(task: str, labels: list[str], context_length: int):
    """(int64 ids [P,L] of the held-out prompts, label index [P])."""
    import torch

    from .clip_model import tokenize

    hp = heldout_prompts(task)
    texts = [t for lab in labels for t in hp[lab]]
    lab = np.array([labels.index(k) for k in labels for _ in hp[k]])
    return torch.from_numpy(tokenize(texts, context_length)), lab


def validate(inner, feats, y: np.ndarray, task: str, labels: list[str], context_length: int) -> dict:
    """Zero-shot AUC / accuracy of the held-out prompts on the validation images (locked features feats)."""
    ids, lab = prompt_ids(task, labels, context_length)
    im, tx = embed(inner, feats, ids)
    return zero_shot_metrics(im, tx, lab, y, float(inner.logit_scale.detach().exp()))


def retention_data(inner, kermany_root: Path, per_class: int) -> dict | None:
    """Locked features and labels (0 = PNEUMONIA, 1 = NORMAL) of the validation part of Kermany train as
    pneumonia-vit / cxr-clip carve it (clip_data.kermany_train_val over the first per_class images of each class):
    the old task, to see what fine-tuning on the new one costs. None when per_class is 0."""
    if not per_class:
        return None
    from .clip_data import kermany_train_val

    cfg = inner.config
    _, val = kermany_train_val(Path(kermany_root), int(cfg["vision"]["image_size"]), per_class)
    px = val["u8"].astype(np.float32) / 255.0
    px = (px - np.asarray(cfg["mean"], np.float32)) / np.asarray(cfg["std"], np.float32)
    return {"feats": locked_features(inner, np.ascontiguousarray(px.transpose(0, 3, 1, 2))),
            "y": (np.asarray(val["y"]) == 0).astype(int)}


def retention(inner, rdata: dict | None, context_length: int) -> dict | None:
    """Pneumonia vs normal zero-shot AUC / accuracy on rdata with cxr-clip's 12 held-out paraphrase sets pooled
    into one prompt ensemble per label (clip_captions.heldout_prompt_sets)."""
    if rdata is None:
        return None
    import torch

    from .clip_captions import heldout_prompt_sets
    from .clip_model import tokenize

    sets = heldout_prompt_sets(12)
    texts = [p for lab in ("PNEUMONIA", "NORMAL") for s in sets for p in s[lab]]
    lab = np.array([k for k, name in enumerate(("PNEUMONIA", "NORMAL")) for s in sets for _ in s[name]])
    im, tx = embed(inner, rdata["feats"], torch.from_numpy(tokenize(texts, context_length)))
    return zero_shot_metrics(im, tx, lab, rdata["y"], float(inner.logit_scale.detach().exp()))


# --- training ------------------------------------------------------------------------------------------------------

def lr_at(step: int, base: float, warmup: int) -> float:
    """Linear warmup over `warmup` steps, then constant (no schedule over a total: a time budget may stop anywhere)."""
    return base * min(1.0, (step + 1) / max(1, warmup))


def train(trainable, inner, data: dict, args, meta: dict, log=print) -> dict:
    """Runs steps [resumed step, args.steps) of fine-tuning, checkpointing to args.out/checkpoint.pt every
    args.checkpoint_every steps and when args.max_minutes (wall clock of this call) runs out.

    data: {feats [N,T,H] locked features of the training images, y [N], task, labels, caption_ids {label: ids
    [K,L]}, val_feats, val_y}. meta: what must match for a resume (method, task, base model hash, ...).
    Returns {done, step, history, steps_this_call, step_wall_s [..], step_cpu_s [..], peak_rss_train_mib}.
    Raises ExportError when a checkpoint of another configuration is in args.out (use --restart)."""
    import torch

    ckpt_path = Path(args.out) / "checkpoint.pt"
    params = trainable_parameters(trainable)
    names = [n for n, _ in params]
    opt = torch.optim.AdamW([p for _, p in params], lr=args.lr, weight_decay=0.0)
    state = None if args.restart else load_ckpt(ckpt_path)
    step, history = 0, {}
    if state is not None:
        diff = {k: (state["meta"].get(k), v) for k, v in meta.items() if state["meta"].get(k) != v}
        if diff:
            raise ExportError(f"{ckpt_path} is from another configuration ({diff}); pass --restart or another --out")
        with torch.no_grad():
            for n, p in params:
                p.copy_(state["trainable"][n])
        opt.load_state_dict(state["optimizer"])
        step, history = state["step"], state["history"]
        log(f"resumed at step {step} from {ckpt_path}")
    if "base" not in history:  # step-0 validation (for lora/qlora the adapters start at B = 0: the base model)
        history["base"] = validate(inner, data["val_feats"], data["val_y"], data["task"], data["labels"],
                                   args.context_length)
        history["base_retention"] = retention(inner, data.get("retention"), args.context_length)
        log(f"step 0 validation: {history['base']}; Kermany pneumonia retention: {history['base_retention']}")

    def save() -> None:
        save_ckpt(ckpt_path, {"meta": meta, "step": step, "history": history, "optimizer": opt.state_dict(),
                              "trainable": {n: p.detach().clone() for n, p in params}})

    n = len(data["y"])
    batch = min(args.batch, n)
    y_all = torch.from_numpy(np.asarray(data["y"], np.int64))
    cap = data["caption_ids"]
    t0, walls, cpus, losses = time.monotonic(), [], [], []
    rss_before = peak_rss_mib() if reset_peak_rss() else None
    reset = rss_before is not None
    trainable.train()
    while step < args.steps:
        if args.max_minutes is not None and walls and time.monotonic() - t0 >= args.max_minutes * 60:
            break
        w0, c0 = time.perf_counter(), time.process_time()
        rng = np.random.default_rng([args.seed, step])
        idx = np.sort(rng.choice(n, batch, replace=False))
        yb = y_all[idx]
        ids = torch.stack([cap[int(k)][int(rng.integers(len(cap[int(k)])))] for k in yb])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.lr, args.warmup)
        img = inner.vision.forward_unlocked(data["feats"][idx])
        txt = inner.encode_text(ids)
        loss = siglip_label_loss(img, txt, yb, yb, inner.logit_scale, inner.logit_bias)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in params], 1.0)
        opt.step()
        step += 1
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
        losses.append(float(loss.detach()))
        if step % args.log_every == 0:
            log(f"step {step}/{args.steps} loss {np.mean(losses[-args.log_every:]):.4f} "
                f"{np.mean(walls[-args.log_every:]):.3f} s/step")
        if step % args.checkpoint_every == 0:
            save()
    trainable.eval()
    peak = peak_rss_mib()
    state_mib = training_state_mib(trainable, opt)
    history.setdefault("loss", []).extend(losses)
    save()
    return {"done": step >= args.steps, "step": step, "history": history, "steps_this_call": len(walls),
            "step_wall_s": walls, "step_cpu_s": cpus, "peak_rss_train_mib": round(peak, 1),
            "rss_before_train_mib": rss_before and round(rss_before, 1), "peak_rss_reset": reset,
            "state_mib": state_mib, "names": names}


def caption_ids(task: str, labels: list[str], context_length: int) -> dict:
    """{label index: int64 ids [K,L] of that label's training captions}."""
    import torch

    from .clip_model import tokenize

    return {k: torch.from_numpy(tokenize(TASKS[task][lab][0], context_length)) for k, lab in enumerate(labels)}
