"""`cxr-export train-clip`: trains cxr-clip (clip_model.py) on CPU in minutes.

Method: LiT (Zhai et al. 2022, arXiv:2111.07991): the image tower is pneumonia-vit's ViT, locked except its last
block; the locked part runs once over every training image (a few augmented views each, clip_data.locked_features)
and its outputs are cached, so a step runs only the unlocked block, the head and the text tower. Loss: SigLIP's
pairwise sigmoid loss (Zhai et al. 2023, arXiv:2303.15343, eq. 1, init t' = log 10, b = -10) with MedCLIP's
label-derived positives (Wang et al. 2022, arXiv:2210.10163): pair (image i, caption j) is a positive whenever the
caption claims nothing the image's facts contradict (clip_captions.consistent), not only when j was drawn for i.

Resumable: the run folder keeps the feature cache, checkpoint.pt (trainable weights, AdamW state, step, best
validation state) and summary.json; the same command continues where --max-minutes (or --stop-after) stopped it.
Each step draws its batch and captions from numpy default_rng([seed, step]), so an interrupted run ends with the
same weights as an uninterrupted one. Model selection: the classifier's validation split (never Kermany test).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path

import numpy as np

from .errors import ExportError


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


VAL_PROMPTS = {"PNEUMONIA": ["a chest x-ray showing pneumonia"], "NORMAL": ["a chest x-ray with no pneumonia"]}
SUB_PROMPTS = {"BACTERIAL": ["chest x-ray showing bacterial pneumonia"], "VIRAL": ["chest x-ray showing viral pneumonia"]}


def _fingerprint(args) -> dict:
    return {k: getattr(args, k) for k in ("views", "adult_views", "seed", "limit_per_class", "unlocked_blocks",
                                          "init_vision")}


def prepare(args, log=print) -> dict:
    """Loads the splits, builds the model (vision from pneumonia-vit), computes or reads the locked-feature cache."""
    import torch

    from . import clip_data as CD
    from .clip_model import build_cxr_clip, init_vision_from_onnx

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = build_cxr_clip({"unlocked_blocks": args.unlocked_blocks, **json.loads(args.config or "{}")},
                           seed=args.seed)
    diff = init_vision_from_onnx(model, args.init_vision)
    log(f"image tower from {args.init_vision} (rebuilt, ONNX Runtime parity {diff:.2e})")
    cache = out / "features.npz"
    meta = json.dumps(_fingerprint(args), sort_keys=True)
    if cache.exists():
        z = np.load(cache, allow_pickle=False)
        if str(z["meta"]) == meta:
            log(f"feature cache {cache} reused")
            return {"model": model, **{k: z[k] for k in z.files if k != "meta"}}
        log(f"feature cache {cache} was made with other settings: recomputed")
    kt, kv = CD.kermany_train_val(args.kermany, 224, args.limit_per_class)
    lt, _ = CD.lung_mask_split(args.lung_masks)
    if args.limit_per_class:
        lt = lt[: args.limit_per_class]
    ad = CD.adult(args.lung_masks, lt, 224)
    torch.set_num_threads(args.threads)
    t0 = time.process_time()
    d = {"feat_k": CD.locked_features(model, kt["u8"], args.views, args.seed, log=log),
         "feat_a": CD.locked_features(model, ad["u8"], args.adult_views, args.seed + 1, log=log),
         "feat_val": CD.locked_features(model, kv["u8"], 1, 0, log=log)[:, 0],
         "tags_k": np.array([",".join(sorted(t)) for t in kt["tags"]]),
         "tags_a": np.array([",".join(sorted(t)) for t in ad["tags"]]),
         "val_y": kv["y"], "val_sub": kv["subtype"]}
    log(f"locked features cached in {time.process_time() - t0:.0f} s CPU")
    np.savez(cache, meta=np.array(meta), **d)
    return {"model": model, **d}


def siglip_loss(img, txt, positives, logit_scale, logit_bias):
    """SigLIP eq. 1: -1/|B| sum_ij log sigmoid(z_ij (t cos_ij + b)), z = +1 for positives, -1 otherwise.
    img [B,D], txt [C,D] unnormalized; positives bool [B,C]."""
    import torch
    import torch.nn.functional as F

    img = F.normalize(img, dim=-1)
    txt = F.normalize(txt, dim=-1)
    logits = img @ txt.t() * logit_scale.exp() + logit_bias
    z = positives.float() * 2 - 1
    return -F.logsigmoid(z * logits).sum() / img.shape[0]


def draw_batch(step: int, seed: int, tags_k, tags_a, n_views_k: int, n_views_a: int, batch: int, adult_frac: float,
               n_captions: int | None = None):
    """(rows: (source 'k'|'a', image index, view index) [B], captions [C], positives bool [B,C]) for one step, from
    default_rng([seed, step]) alone. Kermany rows are class-balanced over normal / bacterial / viral. The C captions
    are drawn for C distinct rows; with label-derived positives a caption need not have one image of its own, so
    C < B costs the text tower (the step's main cost on CPU) C/B and every image still meets C captions."""
    from .clip_captions import consistent, sample_caption

    rng = np.random.default_rng([seed, step])
    groups = {}
    for i, t in enumerate(tags_k):
        key = "bacterial" if "bacterial" in t else "viral" if "viral" in t else "normal" if "normal" in t else "other"
        groups.setdefault(key, []).append(i)
    keys = sorted(groups)
    n_a = int(round(batch * adult_frac)) if len(tags_a) else 0
    rows = []
    for _ in range(batch - n_a):
        g = groups[keys[rng.integers(len(keys))]]
        rows.append(("k", int(g[rng.integers(len(g))]), int(rng.integers(n_views_k))))
    for _ in range(n_a):
        rows.append(("a", int(rng.integers(len(tags_a))), int(rng.integers(n_views_a))))
    tags = [tags_k[i] if s == "k" else tags_a[i] for s, i, _ in rows]
    who = np.arange(batch) if not n_captions or n_captions >= batch else np.sort(
        rng.choice(batch, n_captions, replace=False))
    caps = [sample_caption(rng, tags[r]) for r in who]
    pos = np.array([[consistent(c.claims, t) for c in caps] for t in tags])
    return rows, [c.text for c in caps], pos


def pool_cache(model, feats: np.ndarray) -> np.ndarray:
    """Last-layer hidden states [N,(V,)T,H] float16 -> the head's input [N,(V,)2H] float32 (vision.pool)."""
    import torch

    sh = feats.shape
    x = feats.reshape(-1, sh[-2], sh[-1])
    with torch.no_grad():
        out = np.concatenate([model.vision.pool(torch.from_numpy(x[s:s + 1024]).float()).numpy()
                              for s in range(0, len(x), 1024)])
    return out.reshape(sh[:-2] + (out.shape[-1],))


def zero_shot_auc(model, feats, y, prompts: dict, pos_label: str) -> float:
    """Validation AUC of softmax P(pos_label) (the app's rule: mean of normalized prompt embeddings per label)."""
    import torch

    from .clip_eval import label_probabilities
    from .vit import roc_auc

    with torch.no_grad():
        f = model.vision.head if feats.ndim == 2 else model.vision.forward_unlocked
        img = torch.cat([f(torch.from_numpy(feats[s:s + 256]).float())
                         for s in range(0, len(feats), 256)]).numpy()
    p = label_probabilities(model, img, prompts)
    return roc_auc(y, p[:, list(prompts).index(pos_label)])


def train(args, log=print) -> dict:
    import torch

    from .clip_model import tokenize

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    d = prepare(args, log)
    model = d["model"]
    model.vision.lock()
    pooled = model.vision.n_locked == len(model.vision.vit.layers)
    if pooled:  # everything below the head is locked: cache the head's input once
        d = {**d, **{k: pool_cache(model, d[k]) for k in ("feat_k", "feat_a", "feat_val")}}
    tags_k = [frozenset(t.split(",")) for t in d["tags_k"]]
    tags_a = [frozenset(t.split(",")) for t in d["tags_a"]]
    slow = [p for n, p in model.vision.named_parameters() if p.requires_grad and n.startswith("vit.")]
    temp = [model.logit_scale, model.logit_bias]
    fast = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("vision.vit.")
            and n not in ("logit_scale", "logit_bias")]
    # t and b are two scalars: at the text tower's rate they barely move in a few hundred steps (measured: t 10 ->
    # 10.9 in 500 steps), and with b near -10 no positive pair can reach a logit above 0. Their own rate, no decay.
    opt = torch.optim.AdamW([{"params": slow, "lr": args.lr_vision}, {"params": fast, "lr": args.lr},
                             {"params": temp, "lr": args.lr_temp, "weight_decay": 0.0}],
                            weight_decay=args.weight_decay, foreach=True)
    base = [g["lr"] for g in opt.param_groups]
    out = Path(args.out)
    ck = out / "checkpoint.pt"
    state = {"step": 0, "best": None, "best_score": -1.0, "history": [], "seen_ids": [], "cpu_s": 0.0}
    if ck.exists():
        c = torch.load(ck, weights_only=False)
        if c["fingerprint"] != _fingerprint(args) or c["hyper"] != _hyper(args):
            raise ExportError(f"{ck} was written with other settings ({c['fingerprint']}, {c['hyper']}); use "
                              "another --out or the same arguments")
        model.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        state = c["state"]
        log(f"resumed at step {state['step']} of {args.steps}")
    seen = set(state["seen_ids"])
    t_wall, t_cpu0 = time.time(), time.process_time()

    def save():
        state["cpu_s"] += time.process_time() - save.cpu_mark
        save.cpu_mark = time.process_time()
        state["seen_ids"] = sorted(seen)
        tmp = ck.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "state": state,
                    "fingerprint": _fingerprint(args), "hyper": _hyper(args)}, tmp)
        tmp.replace(ck)

    save.cpu_mark = t_cpu0
    model.train()
    stopped = False
    while state["step"] < args.steps:
        step = state["step"]
        if (args.max_minutes and (time.time() - t_wall) / 60 > args.max_minutes) or \
                (args.stop_after is not None and step >= args.stop_after):
            stopped = True
            break
        rows, caps, pos = draw_batch(step, args.seed, tags_k, tags_a, d["feat_k"].shape[1],
                                     d["feat_a"].shape[1] if len(tags_a) else 1, args.batch, args.adult_frac,
                                     args.captions)
        h = torch.from_numpy(np.stack([d["feat_k"][i, v] if s == "k" else d["feat_a"][i, v]
                                       for s, i, v in rows]).astype(np.float32))
        ids = tokenize(caps, 40)
        ids = ids[:, : int((ids == 49407).argmax(1).max()) + 1]  # causal mask + EOS pooling: trailing pads are inert
        seen.update(np.unique(ids).tolist())
        w = min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * step / args.steps))
        for g, b in zip(opt.param_groups, base):
            g["lr"] = b * w
        img = model.vision.head(h) if pooled else model.vision.forward_unlocked(h)
        txt = model.encode_text(torch.from_numpy(ids))
        loss = siglip_loss(img, txt, torch.from_numpy(pos), model.logit_scale, model.logit_bias)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        state["step"] = step + 1
        if state["step"] % args.eval_every == 0 or state["step"] == args.steps:
            model.eval()
            auc = zero_shot_auc(model, d["feat_val"], d["val_y"], VAL_PROMPTS, "PNEUMONIA")
            m = d["val_sub"] != ""
            sub = zero_shot_auc(model, d["feat_val"][m], d["val_sub"][m] == "bacteria", SUB_PROMPTS, "BACTERIAL")
            model.train()
            score = float(np.nansum([auc, sub]))
            state["history"].append({"step": state["step"], "loss": loss.item(), "val_auc": auc, "val_bv_auc": sub,
                                     "t": model.logit_scale.exp().item(), "b": model.logit_bias.item()})
            if score > state["best_score"]:
                state["best_score"], state["best"] = score, copy.deepcopy(model.state_dict())
            log(f"step {state['step']}/{args.steps} loss {loss.item():.4f} val AUC pneumonia {auc:.4f} "
                f"bacterial/viral {sub:.4f} ({time.time() - t_wall:.0f} s)")
            save()
    if stopped or state["step"] % args.eval_every:  # the budget's stop keeps every step done so far
        save()
    log(f"CPU time this invocation {time.process_time() - t_cpu0:.0f} s, in all {state['cpu_s']:.0f} s")
    if stopped:
        log(f"stopped at step {state['step']}: run the same command again to continue")
        return {"done": False, "step": state["step"]}
    return finish(model, state, args, log)


def _hyper(args) -> dict:
    return {k: getattr(args, k) for k in ("steps", "batch", "captions", "lr", "lr_vision", "lr_temp", "weight_decay", "warmup",
                                          "adult_frac", "config")}


def finish(model, state, args, log=print) -> dict:
    """Best-on-validation weights, token rows never trained zeroed (restrict_vocabulary), saved to out/final."""
    from .clip_model import restrict_vocabulary, save_cxr_clip

    model.load_state_dict(state["best"])
    model.eval()
    restrict_vocabulary(model, state["seen_ids"])
    final = save_cxr_clip(model, Path(args.out) / "final")
    best = max(state["history"], key=lambda h: float(np.nansum([h["val_auc"], h["val_bv_auc"]])))
    summary = {"steps": args.steps, "best_step": best["step"], "val": best, "cpu_s": state["cpu_s"],
               "known_tokens": len(state["seen_ids"]), "history": state["history"],
               "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}}
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    log(f"saved {final} (best step {best['step']}: val AUC {best['val_auc']:.4f}, bacterial/viral "
        f"{best['val_bv_auc']:.4f}); CPU time {state['cpu_s']:.0f} s")
    return {"done": True, "final": str(final), **summary}


def run(args) -> dict:
    res = train(args)
    if res["done"] and args.export_to:
        from .clip_card import evaluate_and_export

        evaluate_and_export(Path(args.out) / "final", Path(args.export_to), args)
    if res["done"] and args.goldens:
        from .clip_export import DEFAULT_PROMPTS
        from .clip_goldens import write_goldens
        from .clip_model import load_cxr_clip

        print(f"goldens: {write_goldens(load_cxr_clip(Path(args.out) / 'final'), args.goldens, args.kermany, DEFAULT_PROMPTS)}")
    return res


def register(subparsers) -> None:
    shared = repo_root().parent / "shared" / "data"
    p = subparsers.add_parser("train-clip", help="train cxr-clip (LiT + SigLIP with label-derived positives)")
    p.add_argument("--kermany", type=Path, default=shared / "kermany-cxr-224")
    p.add_argument("--lung-masks", type=Path, default=shared / "cxr-lung-masks")
    # cxr-clip's locked tower is pneumonia-vit v2 (a plain patch-32 ViT); v3 is a hybrid, so v2's graph is kept here
    # (the same git blob as v2's public/models/pneumonia-vit/model.onnx in commit 59ebab3).
    p.add_argument("--init-vision", default=str(repo_root() / "export-scripts/assets/pneumonia-vit-v2.onnx"))
    p.add_argument("--out", type=Path, default=Path("runs/cxr-clip"))
    p.add_argument("--export-to", type=Path, default=None, help="models folder: evaluate, export, write the card")
    p.add_argument("--goldens", type=Path, default=None, help="tests/goldens: write cxr-clip's goldens when done")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--captions", type=int, default=96, help="captions per step (<= --batch; see draw_batch)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--lr-vision", type=float, default=1e-4)
    p.add_argument("--lr-temp", type=float, default=1e-2, help="learning rate of SigLIP's t' and b")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--views", type=int, default=4, help="cached views per Kermany image (view 0 plain)")
    p.add_argument("--adult-views", type=int, default=12, help="cached views per adult image")
    p.add_argument("--adult-frac", type=float, default=0.15)
    p.add_argument("--unlocked-blocks", type=int, default=0, help="last ViT blocks trained (0: LiT, fully locked)")
    p.add_argument("--config", default=None, help="JSON overrides of clip_model.DEFAULT_CONFIG")
    p.add_argument("--eval-every", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit-per-class", type=int, default=None, help="tests: a few images per class")
    p.add_argument("--max-minutes", type=float, default=None, help="stop (resumable) after this wall time")
    p.add_argument("--stop-after", type=int, default=None, help="stop (resumable) at this step (tests)")
    p.set_defaults(func=run)
