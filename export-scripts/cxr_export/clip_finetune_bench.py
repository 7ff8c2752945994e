"""`cxr-export clip-finetune-bench`: full vs LoRA vs QLoRA on the same data and the same wall-clock budget, one table.

Each method runs `cxr-export clip-finetune --method M --max-minutes MIN --finish-at-budget --restart` in its own
process (so that its peak memory is its own), one after the other, under `nice`; then the table is printed from the
result.json files: trainable parameters, peak RSS while training (VmHWM reset when the loop starts: imports, data
and the locked-feature cache are excluded), the training state (weights as stored - NF4 packed for qlora -,
gradients, AdamW moments), seconds per step (median wall and CPU), steps reached in the budget, the validation
metric before and after (zero-shot AUC / accuracy with held-out prompts on the validation images), merged vs
unmerged max |diff| and the exported sizes. CPU only: no CUDA rows unless run on a GPU machine (not supported here).
`--table-only` prints the table of an earlier run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .errors import ExportError

METHODS = ("full", "lora", "qlora")


def run_method(method: str, args, log=print) -> dict:
    """One clip-finetune process for method; returns its result.json plus the child's rusage peak RSS (MiB, the
    whole process: imports, images, export included) and wall seconds."""
    out = Path(args.out) / method
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "cxr_export", "clip-finetune", "--method", method, "--model", str(args.model),
           "--task", args.task, "--out", str(out), "--steps", str(args.max_steps), "--max-minutes",
           str(args.minutes), "--finish-at-budget", "--restart", "--threads", str(args.threads),
           "--seed", str(args.seed)]
    if args.limit_images:
        cmd += ["--limit-images", str(args.limit_images)]
    if args.nice:
        cmd = ["nice", "-n", str(args.nice)] + cmd
    log(f"[{method}] {' '.join(cmd)}")
    t0 = time.time()
    with open(out / "log.txt", "w") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1])
        _, status, ru = os.wait4(proc.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        tail = (out / "log.txt").read_text()[-2000:]
        raise ExportError(f"clip-finetune --method {method} exited with {code}; log tail:\n{tail}")
    res = json.loads((out / "result.json").read_text())
    res["process_peak_rss_mib"] = round(ru.ru_maxrss / 1024.0, 1)
    res["process_wall_s"] = round(time.time() - t0, 1)
    (out / "result.json").write_text(json.dumps(res, indent=1) + "\n")
    return res


def snapshot_base(ckpt: Path, out: Path, log=print) -> Path:
    """A cxr-clip folder (clip_model.save_cxr_clip) from a train-clip checkpoint.pt while that training still runs:
    its best-on-validation weights (else the current ones), never-trained token rows zeroed as train-clip's own
    finish does (restrict_vocabulary over the checkpoint's seen ids). Returns the folder."""
    import torch

    from .clip_model import build_cxr_clip, restrict_vocabulary, save_cxr_clip

    c = torch.load(ckpt, map_location="cpu", weights_only=False)
    cfg = c.get("hyper", {}).get("config")
    model = build_cxr_clip(json.loads(cfg) if isinstance(cfg, str) else cfg)
    st = c["state"]
    model.load_state_dict(st["best"] if st.get("best") is not None else c["model"])
    restrict_vocabulary(model, st["seen_ids"])
    best = max(st["history"], key=lambda h: float(h.get("val_auc") or 0)) if st.get("history") else {}
    model.config["snapshot"] = {"checkpoint": str(ckpt), "step": st["step"], "best": best}
    log(f"base: {ckpt} at step {st['step']} (best {best})")
    return save_cxr_clip(model, out)


def _mb(b) -> str:
    return "-" if b is None else f"{b / 1e6:.1f} MB" if b >= 1e6 else f"{b / 1e3:.0f} kB"


def table(results: list[dict]) -> str:
    """Markdown table of clip-finetune result.json dicts (one row per method)."""
    hdr = ["method", "trainable params", "peak RSS training (MiB)", "train state (MiB)", "s/step (wall / CPU)",
           "steps in budget", "val AUC base -> final", "val acc base -> final", "Kermany pneumonia AUC / acc (retention)",
           "merged vs unmerged",
           "exported (ONNX fp32)", "adapter"]
    rows = ["| " + " | ".join(hdr) + " |", "|" + "---|" * len(hdr)]
    for r in results:
        st = r["training_state_mib"]
        pct = 100.0 * r["trainable_parameters"] / r["total_parameters"]
        b, m = r["val_base"], r["val_merged"]
        rows.append("| " + " | ".join([
            r["method"], f"{r['trainable_parameters']:,} ({pct:.2f} %)",
            f"{r['peak_rss_train_mib']:.0f} (from {r['rss_before_train_mib']:.0f})",
            f"{st['total']:.1f} (w {st['weights']:.1f} + g {st['grads']:.1f} + Adam {st['optimizer']:.1f})",
            f"{r['sec_per_step_wall']:.3f} / {r['sec_per_step_cpu']:.3f}", str(r["steps"]),
            f"{b['auc']:.3f} -> {m['auc']:.3f}", f"{b['accuracy']:.3f} -> {m['accuracy']:.3f}",
            (f"{r['retention_base']['auc']:.3f} / {r['retention_base']['accuracy']:.2f} -> "
             f"{r['retention_merged']['auc']:.3f} / {r['retention_merged']['accuracy']:.2f}"
             if r.get("retention_merged") else "-"),
            f"{r['merged_vs_unmerged_max_abs']:.1e}", _mb(r["onnx"]["bytes"]) if r.get("onnx") else "-",
            _mb(r["adapter_bytes"])]) + " |")
    return "\n".join(rows)


def run(args: argparse.Namespace) -> str:
    out = Path(args.out)
    if args.from_checkpoint and not args.table_only:
        args.model = snapshot_base(args.from_checkpoint, out / "base")
    results = []
    for m in args.methods:
        if args.table_only:
            p = out / m / "result.json"
            if not p.exists():
                raise ExportError(f"{p}: no result (run the benchmark without --table-only first)")
            results.append(json.loads(p.read_text()))
        else:
            results.append(run_method(m, args))
    r0 = results[0]
    head = (f"clip-finetune benchmark: task {r0['task']} ({' vs '.join(r0['labels'])}), {r0['n_train']} "
            f"fine-tuning / {r0['n_val']} validation images, budget {r0['max_minutes']} min per method, "
            f"{r0['threads']} thread(s), device {r0['device']} (no CUDA rows: no GPU here); model {r0['model']}")
    text = head + "\n\n" + table(results)
    print(text, flush=True)
    if not args.table_only:
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(text + "\n")
    return text


def register(subparsers) -> None:
    from .lung_segmenter import repo_root

    p = subparsers.add_parser("clip-finetune-bench", help="full vs LoRA vs QLoRA fine-tuning of cxr-clip, same data "
                              "and time budget, one table", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=repo_root() / "export-scripts" / "runs" / "cxr-clip" / "final")
    p.add_argument("--from-checkpoint", type=Path, default=None, help="train-clip checkpoint.pt: snapshot its best "
                   "weights into OUT/base and fine-tune that (instead of --model)")
    p.add_argument("--task", default="view")
    p.add_argument("--out", type=Path, default=repo_root() / "export-scripts" / "runs" / "clip-peft-bench")
    p.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    p.add_argument("--minutes", type=float, default=3.0, help="training wall-clock budget per method")
    p.add_argument("--max-steps", type=int, default=100000, help="step cap (the budget normally ends the run)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--nice", type=int, default=10, help="run each method under nice -n N (0: not)")
    p.add_argument("--limit-images", type=int, default=None)
    p.add_argument("--table-only", action="store_true", help="print the table of an earlier run in --out")
    p.set_defaults(func=run)
