"""A real local Ray cluster (a head started by ray.init in the job's process, two actor workers each holding its own
onnxruntime sessions, Ray Data map_batches with an ActorPoolStrategy) labels a few hundred Kermany test images and
writes the same labeled_dataset.csv, byte for byte, and the same embeddings as the single-process engine. The
dashboard and usage statistics are off (include_dashboard=False, RAY_USAGE_STATS_ENABLED=0)."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from test_label_parity import py_label

N_PER_CLASS = 100


def test_ray_two_workers_match_the_single_process_run(tmp_path, shared_dir):
    src = shared_dir / "data" / "kermany-cxr-224" / "test"
    inp = tmp_path / "in"
    for cls in ("NORMAL", "PNEUMONIA"):
        (inp / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:N_PER_CLASS]:
            (inp / cls / f.name).symlink_to(f)
    local = py_label(inp, tmp_path / "local", "--batch", "16")
    ray = py_label(inp, tmp_path / "ray", "--engine", "ray", "--workers", "2", "--batch", "16")
    print(json.dumps({k: ray[k] for k in ("n", "images_per_second", "ray_init_seconds", "first_batch_seconds", "workers")}))
    assert ray["engine"] == "ray" and ray["workers"] == 2 and ray["n"] == local["n"] == 2 * N_PER_CLASS
    a = (tmp_path / "local" / "labeled_dataset.csv").read_bytes()
    b = (tmp_path / "ray" / "labeled_dataset.csv").read_bytes()
    assert a.count(b"\r\n") == 2 * N_PER_CLASS + 1 and a == b
    ea, eb = pq.read_table(tmp_path / "local" / "embeddings.parquet"), pq.read_table(tmp_path / "ray" / "embeddings.parquet")
    assert ea.column("image_id").to_pylist() == eb.column("image_id").to_pylist()
    assert ea.column("classifier_embedding").to_pylist() == eb.column("classifier_embedding").to_pylist()
    assert len(ea.column("classifier_embedding")[0]) == 192
    for k in ("accuracy", "auc", "ood_flagged", "precision_at_5"):
        assert ray[k] == local[k], k
    assert not (Path(tmp_path / "ray") / ".progress").exists()  # a finished run leaves no progress parts
