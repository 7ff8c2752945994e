"""`cxr-export segment-eval`: Dice / IoU of a SAM-family model over a folder of images and lung masks (the
../shared/data/cxr-lung-masks layout: images/, masks/<name>_mask.png with 255 lung / 127 ignore / 0 background,
boxes.json with right_lung / left_lung boxes), in one process or on a Ray cluster, reporting the summary that
`npm run segment-eval` (app/cli/segment-eval.ts) prints.

    cxr-export segment-eval DIR [--engine local|ray] [--address auto|ray://HOST:PORT] [--workers 2]
                            [--model lung-sam] [--prompt box|center-click] [--dtype fp32|int8] [--limit N]

Per image (segmenter_eval.evaluate, the Python reference the app's evaluation is checked against): one prompt per
lung (its box, or one click at the box centre), the multimask output with the highest predicted IoU, SAM's
postprocess_masks, Dice/IoU at full size with 127-pixels ignored. The model files are size- and sha256-checked
against the manifest first. Ray: Data map_batches over the image names with an actor pool, each actor holding the
encoder/decoder sessions. Summary: per lung n / mean / median / p10 (numpy 'linear' quantiles, as app/lib/sam/
metrics.ts), images skipped (no box or mask) and failed (named with the cause).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from .errors import ExportError
from .label_models import choose_variant, default_model_id, file_of, find_entry, load_manifest, verified_path

LUNGS = ("right_lung", "left_lung")
SCHEMA = pa.schema([("image", pa.string()), ("error", pa.string())] +
                   [(f"{lung}_{m}", pa.float64()) for lung in LUNGS for m in ("dice", "iou")])


class SegmentEvaluator:
    """One worker: the model's image encoder and prompt decoder sessions; __call__ scores a batch of image names."""

    def __init__(self, models_dir: str, model: str, data_dir: str, prompt: str, dtype: str = "fp32", threads: int = 1):
        from .segmenter_eval import OrtPair

        entry = find_entry(load_manifest(models_dir), model, "sam")
        v = choose_variant(entry, dtype)
        self.pair = OrtPair(verified_path(models_dir, file_of(v, "image_encoder")),
                            verified_path(models_dir, file_of(v, "prompt_decoder")), threads)
        cfg = entry.get("config", {})
        self.size, self.mask_size = int(cfg.get("image_size", 256)), int(cfg.get("mask_size", 256))
        self.data_dir = Path(data_dir)
        self.boxes = json.loads((self.data_dir / "boxes.json").read_text())
        self.kind = "centre-click" if prompt == "center-click" else "box"

    def __call__(self, batch) -> pa.Table:
        """batch: {image: [names]} (pyarrow Table or dict) -> SCHEMA rows, one per name, failures with the cause."""
        from .lung_segmenter import dice_iou, normalize, to_frame
        from .segmenter_eval import image_prompt, postprocess, read_case

        names = batch.column("image").to_pylist() if hasattr(batch, "column") else list(batch["image"])
        out = []
        for name in names:
            try:
                gray, right, left, ignore = read_case(self.data_dir, name, self.boxes)
                h, w = gray.shape
                frame, (nh, nw) = to_frame(gray, self.size)
                emb = self.pair.encode(normalize(frame[None], [(nh, nw)]).numpy())
                row = {"image": name, "error": None}
                for lung, target in zip(LUNGS, (right, left)):
                    coords, labels = image_prompt(self.kind, self.boxes[name][lung], h, w, self.size)
                    masks, iou = self.pair.decode(emb, coords, labels, self.mask_size)
                    pred = postprocess(masks[0, int(np.argmax(iou[0]))], h, w, self.size)
                    row[f"{lung}_dice"], row[f"{lung}_iou"] = (float(x) for x in dice_iou(pred, target, ignore))
                out.append(row)
            except Exception as e:  # one unreadable image is a failed row; the others are still scored
                out.append({"image": name, "error": f"{type(e).__name__}: {e}"})
        return pa.Table.from_pylist(out, SCHEMA)


def plan(data_dir: Path) -> tuple[list[str], list[str]]:
    """(names to score, names skipped): images/ PNG/JPEG files sorted, scored when boxes.json has both lungs and
    masks/<name>_mask.png exists (app/services/sam.ts evalFolderPlan)."""
    for need in ("images", "masks", "boxes.json"):
        if not (data_dir / need).exists():
            raise ExportError(f"{data_dir}: needs images/, masks/<name>_mask.png and boxes.json (the cxr-lung-masks layout)")
    boxes = json.loads((data_dir / "boxes.json").read_text())
    ok_box = {k for k, b in boxes.items() if isinstance(b, dict) and all(lung in b for lung in LUNGS)}
    masks = {p.name[:-9] for p in (data_dir / "masks").iterdir() if p.name.lower().endswith("_mask.png")}
    names = [p.name.rsplit(".", 1)[0] for p in sorted((data_dir / "images").iterdir())
             if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    todo = [n for n in names if n in ok_box and n in masks]
    skipped = sorted(set(boxes) - ok_box) + [n for n in names if n not in todo and n in ok_box]
    return todo, skipped


def summary_of(model: str, prompt: str, rows: list[dict], skipped: list[str]) -> dict:
    """app/lib/sam/eval.ts summarizeEval."""
    ok = [r for r in rows if not r["error"]]

    def s(v):
        a = np.sort(np.asarray(v, np.float64))
        return {"n": len(a), "mean": float(a.mean()) if len(a) else None,
                "median": float(np.quantile(a, 0.5)) if len(a) else None, "p10": float(np.quantile(a, 0.1)) if len(a) else None}

    return {"model": model, "prompt": prompt, "images": len(ok), "skipped": skipped,
            "failed": [{"image": r["image"], "message": r["error"]} for r in rows if r["error"]],
            "per_lung": {lung: {m: s([r[f"{lung}_{m}"] for r in ok]) for m in ("dice", "iou")} for lung in LUNGS}}


def run(args) -> tuple[dict, list[dict]]:
    models_dir = str(Path(args.models_dir).resolve())
    data_dir = Path(args.dir).resolve()
    manifest = load_manifest(models_dir)
    model = args.model or default_model_id(manifest, "sam")
    entry = find_entry(manifest, model, "sam")
    todo, skipped = plan(data_dir)
    if args.limit:
        todo = todo[:args.limit]
    kw = {"models_dir": models_dir, "model": model, "data_dir": str(data_dir), "prompt": args.prompt,
          "dtype": args.dtype, "threads": args.threads}
    table = pa.table({"image": pa.array(todo, pa.string())})
    if args.engine == "ray":
        import ray

        from .label_job import start_ray

        start_ray(args.workers, args.address)
        ray.data.DataContext.get_current().enable_progress_bars = False
        ds = ray.data.from_arrow([table.slice(s, args.batch) for s in range(0, len(todo), args.batch)] or [table])
        ds = ds.map_batches(SegmentEvaluator, fn_constructor_kwargs=kw, batch_size=args.batch, batch_format="pyarrow",
                            compute=ray.data.ActorPoolStrategy(size=args.workers), num_cpus=1)
        rows = [r for t in ds.iter_batches(batch_size=None, batch_format="pyarrow") for r in t.to_pylist()]
    else:
        ev = SegmentEvaluator(**kw)
        rows = [r for s in range(0, len(todo), args.batch) for r in ev(table.slice(s, args.batch)).to_pylist()]
    order = {n: i for i, n in enumerate(todo)}
    rows.sort(key=lambda r: order[r["image"]])
    dtype = choose_variant(entry, args.dtype)["dtype"]
    summary = {**summary_of(model, args.prompt, rows, skipped), "weights": entry["weights"], "variant": dtype,
               "backend": "onnxruntime-cpu", "engine": args.engine}
    return summary, rows


def register(sub) -> None:
    p = sub.add_parser("segment-eval", help="Dice/IoU of a SAM-family model over images + lung masks, locally or on Ray",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("dir")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--model", default=None)
    p.add_argument("--prompt", choices=["box", "center-click"], default="box")
    p.add_argument("--models-dir", default=str(Path(__file__).resolve().parents[2] / "public" / "models"))
    p.add_argument("--dtype", choices=["fp32", "int8"], default="fp32")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_main)


def _main(args) -> None:
    summary, rows = run(args)
    for r in rows:
        print(f"{r['image']}\tFAILED: {r['error']}" if r["error"] else
              f"{r['image']}\t" + "\t".join(f"{lung} dice {r[f'{lung}_dice']:.4f} iou {r[f'{lung}_iou']:.4f}" for lung in LUNGS))
    sys.stdout.write(json.dumps(summary) + "\n")
