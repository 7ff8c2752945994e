"""One labelling worker: read -> decode -> preprocess -> classifier + zero-shot, for a batch of input references.
The same class runs in-process (`--engine local`) and as a Ray Data actor (`--engine ray`: map_batches with a pool of
these, each holding its own onnxruntime sessions), so both engines compute every row with the same code.
Rows are returned as a pyarrow Table of ROW_SCHEMA (one row per input; failures as status 'error' with the cause,
never an exception for a bad image)."""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from .archive_inputs import Reader, decode_rgb
from .label_models import Classifier, Clip, find_entry, load_manifest

ROW_SCHEMA = pa.schema([
    ("index", pa.int64()), ("image_id", pa.string()), ("ground_truth", pa.string()), ("status", pa.string()),
    ("error", pa.string()), ("classifier_probability", pa.float64()),
    ("classifier_probabilities", pa.list_(pa.float64())), ("classifier_embedding", pa.list_(pa.float32())),
    ("ood_score", pa.float64()), ("ood", pa.bool_()), ("ood_threshold", pa.float64()), ("auto_label", pa.string()),
    ("auto_confidence", pa.float64()), ("zero_shot", pa.string()), ("clip_embedding", pa.list_(pa.float32())),
])

INPUT_SCHEMA = pa.schema([("index", pa.int64()), ("image_id", pa.string()), ("kind", pa.string()),
                          ("loc", pa.string()), ("member", pa.string()), ("ground_truth", pa.string())])


def input_table(rows: list[dict]) -> pa.Table:
    """archive_inputs.list_inputs rows -> the table the workers read (references only, never pixels)."""
    return pa.Table.from_pylist([{"index": r["index"], "image_id": r["image_id"], "kind": r["ref"][0], "loc": r["ref"][1],
                                  "member": r["ref"][2], "ground_truth": r["ground_truth"]} for r in rows], INPUT_SCHEMA)


class Labeller:
    """Holds the sessions of one classifier (and optionally one CLIP model with its prompt sets).

    models_dir: folder of manifest.json; model / clip: manifest ids; prompts: [{label, prompts}] (None: the CLIP
    model's defaults); dtype: preferred variant; threads: onnxruntime intra-op threads; providers: onnxruntime
    execution providers (default CPU; ['CUDAExecutionProvider', 'CPUExecutionProvider'] on a GPU node)."""

    def __init__(self, models_dir: str, model: str, clip: str | None = None, prompts: list[dict] | None = None,
                 dtype: str = "fp32", threads: int = 1, providers: list[str] | None = None):
        from .label_models import default_prompt_sets

        manifest = load_manifest(models_dir)
        self.classifier = Classifier.load(models_dir, find_entry(manifest, model, "classifier"), dtype, threads, providers)
        self.clip = None
        if clip:
            ce = find_entry(manifest, clip, "clip")
            self.clip = Clip.load(models_dir, ce, prompts or default_prompt_sets(ce), dtype, threads, providers)
        self.reader = Reader()

    def __call__(self, batch) -> pa.Table:
        """batch: a pyarrow Table (or dict of lists) of INPUT_SCHEMA -> pa.Table of ROW_SCHEMA, same row order."""
        cols = batch.to_pydict() if hasattr(batch, "to_pydict") else {k: list(v) for k, v in batch.items()}
        n = len(cols["index"])
        rows = [{"index": int(cols["index"][i]), "image_id": str(cols["image_id"][i]),
                 "ground_truth": cols["ground_truth"][i], "status": "error"} for i in range(n)]
        ok, rgbs = [], []
        for i in range(n):
            try:
                b = self.reader.read((cols["kind"][i], cols["loc"][i], cols["member"][i]))
                rgbs.append(decode_rgb(b))
                ok.append(i)
            except Exception as e:  # the row carries the cause; the batch goes on
                rows[i]["error"] = f"unreadable: {e}" if isinstance(e, OSError) else str(e)
        if ok:
            self._run(rows, ok, rgbs)
        return pa.Table.from_pylist(rows, ROW_SCHEMA)

    def _run(self, rows, ok, rgbs):
        c = self.classifier
        x = np.stack([self._prep(c, im) for im in rgbs])
        failure = None
        try:
            cr = c.run(x)
        except Exception as e:  # a model failure fails the rows it could not label, as in batch.ts
            cr, failure = None, f"Classification failed: {e}"
        zr = None
        if self.clip is not None:
            xc = x if self.clip.entry["preprocessing"] == c.entry["preprocessing"] else np.stack([self._prep(self.clip, im) for im in rgbs])
            try:
                zr = self.clip.run(xc)
            except Exception as e:
                failure = failure or f"Zero-shot labelling failed: {e}"
        for k, i in enumerate(ok):
            r = rows[i]
            if cr is None and zr is None:
                r["error"] = failure or "no model output"
                continue
            r.update(status="done", error=None)
            if cr is not None:
                o = cr[k]
                r.update(classifier_probability=o["probability"], classifier_probabilities=o["probabilities"],
                         classifier_embedding=o["embedding"].tolist() if o["embedding"] is not None else None,
                         ood_score=o.get("ood_score"), ood=o.get("ood"), ood_threshold=o.get("ood_threshold"))
            if zr is not None:
                z = zr[k]
                r.update(auto_label=z["label"], auto_confidence=z["confidence"], zero_shot=json.dumps(z["probabilities"]),
                         clip_embedding=z["embedding"].tolist())

    @staticmethod
    def _prep(model, rgb):
        from .label_models import to_model_input

        return to_model_input(rgb, model.entry["preprocessing"], model.lut)


def rows_of(table: pa.Table) -> list[dict]:
    """ROW_SCHEMA table -> row dicts as label_csv reads them (zero_shot parsed)."""
    out = table.to_pylist()
    for r in out:
        r["zero_shot"] = json.loads(r["zero_shot"]) if r.get("zero_shot") else None
    return out
