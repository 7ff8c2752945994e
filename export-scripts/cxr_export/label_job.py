"""`cxr-export label`: label, embed and OOD-score a folder, a zip or a list of paths/URIs in one process or on a Ray
cluster, with the same models, preprocessing, CSV and metrics as `npm run label` (app/cli/label.ts).

    cxr-export label INPUT --out DIR [--engine local|ray] [--address auto|ray://HOST:PORT] [--workers N]
                     [--model pneumonia-vit] [--clip ID] [--prompts FILE.json] [--models-dir public/models]
                     [--dtype fp32|int8] [--threshold T] [--truth CSV] [--batch 16] [--threads 1] [--limit N]
                     [--providers CUDAExecutionProvider CPUExecutionProvider] [--gpus-per-worker G] [--resume]

Writes DIR/labeled_dataset.csv (+ .meta.json), DIR/metrics.json (also the last line of stdout) and
DIR/embeddings.parquet (image_id, classifier_embedding, clip_embedding: for similar-case search at archive scale).

- --engine ray: Ray Data `map_batches` over the input references with an actor pool (`concurrency=--workers`), each
  actor a label_worker.Labeller holding its own onnxruntime sessions; the driver streams finished batches
  (`iter_batches`). Without --address a local Ray instance with --workers CPUs is started (dashboard and usage
  statistics off); `--address auto` joins a running cluster, `ray://HOST:PORT` connects through Ray Client. Models
  and inputs must be readable by every node (shared storage or object-store URIs in the list).
- No work lost: every finished batch is appended to the CSV and written as one Parquet part (all its rows,
  embeddings included, written to a temporary name and renamed, so a kill never leaves half a part) under
  DIR/.progress/. `--resume` reads the parts, refuses a run made with other models/threshold/prompt labels/input,
  and labels only the rows not yet done. The finished run rewrites the CSV in input order and removes the parts.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from . import label_csv as lc
from .archive_inputs import list_inputs
from .errors import ExportError
from .label_models import choose_variant, default_model_id, find_entry, load_manifest, parse_prompt_sets
from .label_worker import ROW_SCHEMA, Labeller, input_table, rows_of

CSV_NAME = "labeled_dataset.csv"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class PartWriter:
    """The CSV appended as batches finish, and each batch's rows as an atomically written Parquet part."""

    def __init__(self, out: Path, identity: dict, threshold: float, labels: dict, zs: list[str], done: list[dict]):
        self.dir = out / ".progress"
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "identity.json").write_text(json.dumps(identity))
        self.threshold, self.labels, self.zs = threshold, labels, zs
        self.csv = open(out / CSV_NAME, "w", newline="")
        self.csv.write(lc.csv_line(lc.header(zs)) + "\r\n")
        self._lines(done)

    def _lines(self, rows: list[dict]) -> None:
        lines = lc.csv_lines(sorted(rows, key=lambda r: r["index"]), self.threshold, self.labels, self.zs)
        if lines:
            self.csv.write("".join(x + "\r\n" for x in lines))
        self.csv.flush()
        os.fsync(self.csv.fileno())

    def append(self, table: pa.Table) -> list[dict]:
        """One finished batch: its Parquet part first (the record a resume trusts), then its CSV lines."""
        tmp = self.dir / f"tmp-{uuid.uuid4().hex}.parquet"
        pq.write_table(table, tmp)
        os.replace(tmp, self.dir / f"part-{uuid.uuid4().hex}.parquet")
        rows = rows_of(table)
        self._lines(rows)
        return rows

    def finish(self) -> None:
        self.csv.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def read_parts(out: Path, identity: dict) -> list[dict] | None:
    """The rows of a stopped run (None without one); ExportError when it was made with other options."""
    d = out / ".progress"
    if not (d / "identity.json").exists():
        return None
    had = json.loads((d / "identity.json").read_text())
    for k, v in identity.items():
        if had.get(k) != v:
            raise ExportError(f"--resume: {d} was written by a run with {k} {json.dumps(had.get(k))}, this one has "
                              f"{json.dumps(v)}; start over without --resume or use the same options")
    parts = sorted(d.glob("part-*.parquet"))
    return [r for p in parts for r in rows_of(pq.read_table(p, schema=ROW_SCHEMA))]


def start_ray(workers: int, address: str | None) -> None:
    """Connects to `address` (auto, ray://HOST:PORT) or starts a local Ray with workers + 1 logical CPUs; the
    dashboard, usage statistics and log forwarding off (no network calls beyond the cluster)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    if not ray.is_initialized():
        init = {"include_dashboard": False, "log_to_driver": False, "logging_level": "ERROR"}
        if address and address.startswith("ray://"):
            ray.init(address=address)  # Ray Client: the cluster's own settings apply
        elif address:
            ray.init(address=address, **init)
        else:
            # one logical CPU per actor plus one for Ray Data's own tasks (else the pool can starve them)
            ray.init(num_cpus=workers + 1, object_store_memory=256 * 1024 * 1024, **init)


def ray_batches(table: pa.Table, kwargs: dict, workers: int, batch: int, gpus: float = 0):
    """Yields finished pa.Tables from a Ray Data actor pool of `workers` Labellers (see the module comment)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # one block per batch (references only: a few hundred bytes each), so batches stream to the actors as they free up
    ds = ray.data.from_arrow([table.slice(s, batch) for s in range(0, table.num_rows, batch)])
    ds = ds.map_batches(Labeller, fn_constructor_kwargs=kwargs, batch_size=batch, batch_format="pyarrow",
                        compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=1, **({"num_gpus": gpus} if gpus else {}))
    for t in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
        yield t


def run(args) -> dict:
    """The whole job (see the module comment); returns the metrics dict it prints."""
    prompt_sets = parse_prompt_sets(Path(args.prompts).read_text(), args.prompts) if args.prompts else None
    models_dir = str(Path(args.models_dir).resolve())
    manifest = load_manifest(models_dir)
    entry = find_entry(manifest, args.model, "classifier")
    clip_id = args.clip or (default_model_id(manifest, "clip") if args.prompts else None)
    clip_entry = find_entry(manifest, clip_id, "clip") if clip_id else None
    if args.prompts and not clip_entry:
        raise ExportError("--prompts needs a CLIP model and the manifest has none")
    from .label_models import default_prompt_sets, usable_prompt_sets

    prompts = prompt_sets or (default_prompt_sets(clip_entry) if clip_entry else None)
    zs = [s["label"] for s in usable_prompt_sets(prompts)] if clip_entry else []
    labels = lc.batch_labels(entry.get("labels"))
    card_thr = entry.get("card", {}).get("threshold")
    threshold = args.threshold if args.threshold is not None else card_thr if isinstance(card_thr, (int, float)) else 0.5
    dtype = choose_variant(entry, args.dtype)["dtype"]

    from .archive_inputs import truth_table

    truth = truth_table(args.truth, labels["labels"]) if args.truth else None
    rows, notes = list_inputs(args.input, labels["labels"], truth)
    for n in notes:
        log(n)
    if args.limit:
        rows = rows[:args.limit]
    log(f"{len(rows)} files in {args.input}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    identity = {"model": entry["id"], "dtype": dtype, "clip": clip_id, "zero_shot_labels": zs, "threshold": threshold,
                "input": str(Path(args.input).resolve()) if "://" not in args.input else args.input}
    resumed = read_parts(out, identity) if args.resume else None
    if args.resume:
        log(f"resuming: {len(resumed)} of {len(rows)} files already done" if resumed is not None
            else f"--resume: no progress in {out}; starting from the first file")
    by_index = {r["index"]: r for r in resumed or []}
    for i, r in by_index.items():
        if i >= len(rows) or rows[i]["image_id"] != r["image_id"]:
            raise ExportError(f"--resume: file {i + 1} is now {rows[i]['image_id'] if i < len(rows) else 'missing'}, "
                              f"the stopped run had {r['image_id']}; the input changed, start over")
    writer = PartWriter(out, identity, threshold, labels, zs, list(by_index.values()))
    pending = [r for r in rows if r["index"] not in by_index]
    kwargs = {"models_dir": models_dir, "model": entry["id"], "clip": clip_id, "prompts": prompts, "dtype": args.dtype,
              "threads": args.threads, "providers": args.providers}
    # local: model loading is left out of the rate, as npm run label does; ray: start-up is in it (first_batch_seconds)
    worker = Labeller(**kwargs) if pending and args.engine != "ray" else None
    t_start = time.perf_counter()
    if pending and args.engine == "ray":
        start_ray(args.workers, args.address)
    startup = time.perf_counter() - t_start
    t0 = time.perf_counter()
    first = None
    done = dict(by_index)
    if pending:
        table = input_table(pending)
        if args.engine == "ray":
            batches = ray_batches(table, kwargs, args.workers, args.batch, args.gpus_per_worker)
        else:
            batches = (worker(table.slice(s, args.batch)) for s in range(0, table.num_rows, args.batch))
        for t in batches:
            first = first or time.perf_counter() - t0
            for r in writer.append(t):
                done[r["index"]] = r
                if r["status"] == "error":
                    log(f"skip {r['image_id']}: {r['error']}")
            log(f"[{len(done)}/{len(rows)}] {(len(done) - len(by_index)) / (time.perf_counter() - t0):.1f} img/s")
    seconds = time.perf_counter() - t0
    all_rows = [done[i] for i in sorted(done)]
    ctx = {"threshold": threshold, "labels": labels, "zs_labels": zs, "clip": clip_id, "file": CSV_NAME,
           "clip_config": clip_entry.get("config", {}) if clip_entry else None,
           "threshold_source": "argmax (multi-class)" if labels.get("positive") is None else "command line"
           if args.threshold is not None else "model card" if isinstance(card_thr, (int, float)) else "default 0.5",
           "classifier": {"id": entry["id"], "weights": entry["weights"], "dtype": dtype}}
    (out / CSV_NAME).write_text(lc.to_csv(all_rows, threshold, labels, zs), newline="")
    (out / "labeled_dataset.meta.json").write_text(json.dumps(lc.metadata(all_rows, ctx), indent=2) + "\n")
    write_embeddings(out / "embeddings.parquet", all_rows)
    writer.finish()
    zero_shot = bool(clip_id) and any(r.get("auto_label") is not None for r in all_rows)
    rep = {"model": entry["id"], "dtype": dtype, "weights": entry["weights"],
           **lc.report(all_rows, threshold, labels, zs if zero_shot else []),
           "auto_label_source": clip_id if zero_shot else "classifier",
           "skipped": sum(r["status"] == "error" for r in all_rows) + sum(n.startswith("skip ") for n in notes)}
    if not clip_id:
        rep.pop("clip_precision_at_5")
    ran = len(pending)
    rep.update(images_per_second=ran / seconds if seconds > 0 else None, seconds=seconds, threads=args.threads,
               batch=args.batch, resumed_rows=len(by_index), out=str(out / CSV_NAME), engine=args.engine,
               workers=args.workers if args.engine == "ray" else 1, first_batch_seconds=first, ray_init_seconds=startup if args.engine == "ray" else None)
    (out / "metrics.json").write_text(json.dumps(rep, indent=2) + "\n")
    log(f"wrote {sum(r['status'] == 'done' for r in all_rows)} rows to {out / CSV_NAME}; {rep['skipped']} skipped; "
        f"{rep['images_per_second'] or 0:.1f} images/second")
    return rep


def write_embeddings(path: Path, rows: list[dict]) -> None:
    """Finished rows' embeddings in CSV order: image_id, classifier_embedding, clip_embedding (float32 lists)."""
    done = [r for r in rows if r["status"] == "done"]
    t = pa.table({"image_id": pa.array([r["image_id"] for r in done], pa.string()),
                  "classifier_embedding": pa.array([r.get("classifier_embedding") for r in done], pa.list_(pa.float32())),
                  "clip_embedding": pa.array([r.get("clip_embedding") for r in done], pa.list_(pa.float32()))})
    pq.write_table(t, path)


def register(sub) -> None:
    p = sub.add_parser("label", help="label/embed/OOD-score a folder, zip or list of images, locally or on Ray",
                       description=__doc__.split("\n\n")[0])
    repo = Path(__file__).resolve().parents[2]
    p.add_argument("input", help="folder, .zip, or .csv/.parquet list of paths or URIs")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--engine", choices=["local", "ray"], default="local")
    p.add_argument("--address", default=None, help="Ray cluster: auto or ray://HOST:PORT (default: start a local one)")
    p.add_argument("--workers", type=int, default=2, help="Ray actors (each holds its own sessions)")
    p.add_argument("--model", default="pneumonia-vit")
    p.add_argument("--clip", default=None)
    p.add_argument("--prompts", default=None, help="prompt sets {LABEL: [prompt, ...]} (implies the default CLIP model)")
    p.add_argument("--models-dir", default=str(repo / "public" / "models"))
    p.add_argument("--dtype", choices=["fp32", "int8"], default="fp32")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--truth", default=None, help="ground-truth CSV (image_id|path|filename + label columns)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads per worker")
    p.add_argument("--providers", nargs="*", default=None, help="onnxruntime providers, e.g. CUDAExecutionProvider CPUExecutionProvider")
    p.add_argument("--gpus-per-worker", type=float, default=0, help="Ray: GPUs each actor reserves (with --providers CUDAExecutionProvider)")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.set_defaults(func=_main)


def _main(args) -> None:
    if args.batch < 1 or args.workers < 1 or args.threads < 1:
        raise ExportError("--batch, --workers and --threads must be positive integers")
    if args.threshold is not None and not 0 <= args.threshold <= 1:
        raise ExportError("--threshold must be between 0 and 1")
    rep = run(args)
    print(f"images/second: {rep['images_per_second'] or 0:.2f}")
    print(json.dumps(rep))
