"""`cxr-export clip-finetune`: adapts a cxr-clip model (clip_model.py) to a new zero-shot task by full fine-tuning,
LoRA or QLoRA (clip_finetune_peft.py), merges the adapters into plain fp32 weights and exports the merged model as
ONNX (image_encoder.onnx, text_encoder.onnx, tokenizer.json; parity against PyTorch checked).

Data and task: clip_finetune_data.py (adult cxr-lung-masks images, lung-sam's training part only; held-out prompts
for validation). Loop: clip_finetune_train.py. One command, seeded, resumable: when --max-minutes stops the
training, the checkpoint in --out is kept and the same command continues; merge, validation and export run once
--steps are done (or at the stop with --finish-at-budget, which the benchmark uses to give every method the same
time). Writes into --out: checkpoint.pt, adapter/ (lora, qlora: the peft adapter), merged/ (config.json +
model.safetensors, loadable by clip_model.load_cxr_clip), onnx/, result.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .errors import ExportError

LR_DEFAULT = {"full": 1e-4, "lora": 1e-3, "qlora": 1e-3}  # 40-step probes of 2e-5 | 1e-4 and 5e-4 | 2e-3


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _dir_bytes(d: Path) -> int:
    return sum(p.stat().st_size for p in Path(d).rglob("*") if p.is_file())


def known_token_ids(model, base_known) -> list[int]:
    """Token ids whose embedding row is non-zero, with the base's known ids: cxr-clip zeroes never-trained rows
    (clip_model.restrict_vocabulary); full fine-tuning trains the rows of new caption words, LoRA cannot (the token
    embedding is not an adapted Linear), so there a new word stays a blank row."""
    w = model.text.text_model.embeddings.token_embedding.weight.detach()
    return sorted(set(int(i) for i in (w.abs().sum(1) > 0).nonzero().flatten().tolist()) | set(base_known or []))


def export_merged_onnx(model, out_dir: Path, name: str, base_known=None) -> dict:
    """The merged CxrClip through cxr-clip's own export path (clip_export.compact_text_copy: the text graph keeps only
    the known token rows; clip.export_clip: image_encoder.onnx [b,3,S,S] -> [b,D], text_encoder.onnx int64 [b,77]
    -> [b,D], tokenizer.json; PyTorch parity within 1e-4 on seeded inputs, else ExportError), plus clip_export's
    real-input parity (Kermany test images, held-out prompts) at 224 px. Writes out_dir; returns {parity, bytes}."""
    from .clip import export_clip
    from .clip_export import compact_text_copy, real_parity
    from .clip_model import tokenizer

    model.config["known_token_ids"] = known_token_ids(model, base_known)
    s = int(model.config["vision"]["image_size"])
    info = dict(context_length=77, pad_token_id=49407, image_size=s, mean=model.config["mean"],
                std=model.config["std"], interpolation="bilinear", source="cxr-export clip-finetune",
                license="Apache-2.0", name=name)
    out_dir = Path(out_dir)
    entry = export_clip(compact_text_copy(model), tokenizer(77), info, out_dir.parent, out_dir.name, "trained",
                        write_manifest=False)
    parity = dict(entry["config"]["parity"])
    if s == 224:
        parity["real_inputs"] = real_parity(model, out_dir)
    return {"parity": parity, "bytes": _dir_bytes(out_dir), "known_tokens": len(model.config["known_token_ids"])}


def vocab_report(task: str, base_known) -> dict | None:
    """How many distinct tokens of the task's training captions / held-out prompts the base model never saw
    (their embedding rows are zero: restrict_vocabulary). None when the base records no known ids."""
    if not base_known:
        return None
    from .clip_finetune_data import TASKS
    from .clip_model import tokenize

    known = set(base_known)
    out = {}
    for k, part in (("train_captions", 0), ("heldout_prompts", 1)):
        ids = set(np.unique(tokenize([t for v in TASKS[task].values() for t in v[part]], 77)).tolist())
        out[k] = {"tokens": len(ids), "unknown_to_base": len(ids - known)}
    return out


def prepare(args, log=print):
    """Base model, method set-up, task data and locked features. Returns (trainable, inner, info, data, meta)."""
    import torch

    from .clip_finetune_data import load_pixels, task_split
    from .clip_finetune_peft import setup_method
    from .clip_finetune_train import caption_ids, locked_features, retention_data
    from .clip_model import load_cxr_clip

    torch.manual_seed(args.seed)
    model = load_cxr_clip(args.model)
    base_sha = _sha256(Path(args.model) / "model.safetensors")
    exp_lora = None
    if args.method != "full":
        from .clip_finetune_peft import expected_lora_parameters

        exp_lora = expected_lora_parameters(model, args.lora_r)
    base_known = model.config.get("known_token_ids")
    trainable, inner, info = setup_method(model, args.method, args.lora_r, args.lora_alpha, args.lora_dropout)
    info.update(expected_trainable=exp_lora, base_known=base_known, vocab=vocab_report(args.task, base_known))
    split = task_split(args.task, args.seed, args.val_frac, args.data, args.limit_images)
    cfg = inner.config
    t0 = time.perf_counter()
    feats = {}
    for part in ("train", "val"):
        px = load_pixels([p for p, _ in split[part]], cfg["vision"]["image_size"], cfg["mean"], cfg["std"])
        feats[part] = locked_features(inner, px)
    log(f"task {args.task}: {len(split['train'])} fine-tuning / {len(split['val'])} validation images "
        f"(lung-sam's {split['n_lung_sam_heldout']} held-out images not read); locked features "
        f"{time.perf_counter() - t0:.1f} s")
    data = {"feats": feats["train"], "y": np.array([k for _, k in split["train"]]), "task": args.task,
            "labels": split["labels"], "caption_ids": caption_ids(args.task, split["labels"], args.context_length),
            "val_feats": feats["val"], "val_y": np.array([k for _, k in split["val"]]),
            "n_train": len(split["train"]), "n_val": len(split["val"]),
            "retention": retention_data(inner, args.kermany, args.retention_per_class)}
    meta = {"method": args.method, "task": args.task, "base_sha256": base_sha, "seed": args.seed,
            "batch": args.batch, "lr": args.lr, "warmup": args.warmup, "lora_r": args.lora_r,
            "lora_alpha": args.lora_alpha, "val_frac": args.val_frac, "limit_images": args.limit_images,
            "context_length": args.context_length, "retention_per_class": args.retention_per_class}
    return trainable, inner, info, data, meta


def finish(trainable, inner, info: dict, data: dict, summary: dict, args, log=print) -> dict:
    """Validation (unmerged), adapter save, merge, merged-vs-unmerged check, merged save, ONNX export, result.json."""
    from .clip_finetune_peft import count_parameters, merge
    from .clip_finetune_train import embed, prompt_ids, retention, validate, zero_shot_metrics
    from .clip_model import save_cxr_clip

    out = Path(args.out)
    counts = count_parameters(trainable)
    unmerged = validate(inner, data["val_feats"], data["val_y"], data["task"], data["labels"], args.context_length)
    ids, lab = prompt_ids(data["task"], data["labels"], args.context_length)
    ref_img, ref_txt = embed(inner, data["val_feats"], ids)
    adapter_bytes = None
    if args.method != "full":
        trainable.save_pretrained(str(out / "adapter"))
        adapter_bytes = _dir_bytes(out / "adapter")
    merged = merge(trainable, args.method)
    m_img, m_txt = embed(merged, data["val_feats"], ids)
    diff = float(max(np.abs(m_img - ref_img).max(), np.abs(m_txt - ref_txt).max()))
    if diff > args.merge_atol:
        raise ExportError(f"merged and unmerged embeddings differ by {diff:.3g} > {args.merge_atol:g}")
    merged_metrics = zero_shot_metrics(m_img, m_txt, lab, data["val_y"], float(merged.logit_scale.detach().exp()))
    retained = retention(merged, data["retention"], args.context_length)
    save_cxr_clip(merged, out / "merged")
    exported = None if args.no_export else export_merged_onnx(
        merged, out / "onnx", f"cxr-clip fine-tuned ({args.method}, task {args.task})", info.get("base_known"))
    walls, cpus = summary["step_wall_s"], summary["step_cpu_s"]
    result = {
        "method": args.method, "task": args.task, "labels": data["labels"], "model": str(args.model),
        "n_train": data["n_train"], "n_val": data["n_val"], "steps": summary["step"],
        "steps_requested": args.steps, "done": summary["done"], "max_minutes": args.max_minutes,
        "trainable_parameters": counts["trainable"], "total_parameters": counts["total"],
        "expected_trainable_parameters": info.get("expected_trainable"),
        "lora": {k: info[k] for k in ("lora_r", "lora_alpha", "lora_dropout") if k in info} or None,
        "lora_targets": len(info.get("targets", [])) or None, "nf4": info.get("nf4"), "vocab": info.get("vocab"),
        "peak_rss_train_mib": summary["peak_rss_train_mib"], "peak_rss_reset": summary["peak_rss_reset"],
        "rss_before_train_mib": summary["rss_before_train_mib"], "training_state_mib": summary["state_mib"],
        "steps_this_call": summary["steps_this_call"],
        "sec_per_step_wall": round(float(np.median(walls)), 4) if walls else None,
        "sec_per_step_cpu": round(float(np.median(cpus)), 4) if cpus else None,
        "threads": args.threads, "device": "cpu",
        "val_base": summary["history"]["base"], "val_unmerged": unmerged, "val_merged": merged_metrics,
        "retention_base": summary["history"].get("base_retention"), "retention_merged": retained,
        "n_retention": None if data["retention"] is None else len(data["retention"]["y"]),
        "merged_vs_unmerged_max_abs": diff, "final_loss_mean20": round(float(np.mean(
            summary["history"]["loss"][-20:])), 4) if summary["history"].get("loss") else None,
        "adapter_bytes": adapter_bytes, "merged_safetensors_bytes": (out / "merged" / "model.safetensors").stat().st_size,
        "onnx": exported,
    }
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    log(f"validation ({data['task']}, held-out prompts): base {result['val_base']} -> merged {merged_metrics}; "
        f"merged vs unmerged max |diff| {diff:.3g}")
    return result


def run(args: argparse.Namespace) -> dict:
    import torch

    if args.lr is None:
        args.lr = LR_DEFAULT[args.method]
    if args.steps < 1 or args.batch < 2:
        raise ExportError("--steps must be >= 1 and --batch >= 2")
    if args.max_minutes is not None and args.max_minutes < 0:
        raise ExportError("--max-minutes must be >= 0")
    torch.set_num_threads(args.threads)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    trainable, inner, info, data, meta = prepare(args)
    from .clip_finetune_train import train

    summary = train(trainable, inner, data, args, meta)
    if not summary["done"] and not args.finish_at_budget:
        print(f"stopped at step {summary['step']} of {args.steps} (--max-minutes): run the same command again to "
              "resume; merge and export run when training is complete", flush=True)
        return summary
    result = finish(trainable, inner, info, data, summary, args)
    print(json.dumps({k: result[k] for k in ("method", "steps", "trainable_parameters", "peak_rss_train_mib",
                                            "sec_per_step_wall", "val_base", "val_merged",
                                            "retention_base", "retention_merged", "merged_vs_unmerged_max_abs")}), flush=True)
    return result


def register(subparsers) -> None:
    from .clip_finetune_data import TASKS
    from .clip_finetune_peft import METHODS
    from .lung_segmenter import default_data_dir

    p = subparsers.add_parser("clip-finetune", help="adapt a cxr-clip model to a new task (full / LoRA / QLoRA), "
                              "merge and export to ONNX", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--model", type=Path, required=True, help="cxr-clip folder (config.json + model.safetensors)")
    p.add_argument("--task", choices=sorted(TASKS), default="view")
    p.add_argument("--out", type=Path, required=True, help="run folder (checkpoint, adapter, merged, onnx)")
    p.add_argument("--data", type=Path, default=default_data_dir(), help="cxr-lung-masks folder")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--max-minutes", type=float, default=None, help="stop training after this many minutes of this "
                   "call (checkpoint kept; the same command resumes)")
    p.add_argument("--finish-at-budget", action="store_true", help="when --max-minutes stops training, validate, "
                   "merge and export anyway (same time budget per method: the benchmark)")
    p.add_argument("--batch", type=int, default=32, help="images (and captions) per step")
    p.add_argument("--lr", type=float, default=None, help="AdamW learning rate (default: full 1e-4, lora/qlora 1e-3)")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=16.0)
    p.add_argument("--lora-dropout", type=float, default=0.0)
    p.add_argument("--kermany", type=Path, default=default_data_dir().parent / "kermany-cxr-224",
                   help="Kermany folder for the retention check (the old task: pneumonia vs normal)")
    p.add_argument("--retention-per-class", type=int, default=500, help="first N Kermany train images per class, "
                   "of which the validation carve-out (10 %%) is scored before and after (0: skip)")
    p.add_argument("--val-frac", type=float, default=0.2, help="validation share of lung-sam's training part")
    p.add_argument("--context-length", type=int, default=32, help="training pad length (EOS pooling with a causal "
                   "mask: the embedding does not depend on it)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--checkpoint-every", type=int, default=25)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--merge-atol", type=float, default=1e-4)
    p.add_argument("--restart", action="store_true", help="ignore a checkpoint in --out")
    p.add_argument("--limit-images", type=int, default=None, help="only the first N training-part images (tests)")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    p.set_defaults(func=run)
