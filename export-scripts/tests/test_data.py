import csv
import json

import numpy as np
import pytest

from conftest import SHARED_PRESENT, skip_or_fail
from cxr_export import data as D
from cxr_export.cli import main
from cxr_export.errors import ExportError


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_folder_splits_and_subset(small_kermany, tmp_path):
    out = tmp_path / "prepared"
    assert main(["data", "--folder", str(small_kermany), "--out", str(out), "--per-class", "3", "--seed", "1"]) == 0
    rows = _rows(out / "splits.csv")
    by = {}
    for r in rows:
        by.setdefault((r["split"], r["label"]), []).append(r["source"])
    # val carved out of train per class (12 -> 1 val + 11 train at 10%), test kept as given
    assert {k: len(v) for k, v in by.items()} == {("train", "NORMAL"): 11, ("val", "NORMAL"): 1,
                                                  ("train", "PNEUMONIA"): 11, ("val", "PNEUMONIA"): 1,
                                                  ("test", "NORMAL"): 4, ("test", "PNEUMONIA"): 4}
    assert not set(by[("train", "NORMAL")]) & set(by[("val", "NORMAL")])
    meta = [json.loads(line) for line in (out / "images" / "metadata.jsonl").read_text().splitlines()]
    assert len(meta) == 6
    texts = {m["text"] for m in meta}
    assert texts == {"a normal chest X-ray", "a chest X-ray showing pneumonia"}
    for m in meta:
        assert (out / "images" / m["file_name"]).is_file() and m["file_name"].endswith(".png")
    labels = _rows(out / "images" / "labels.csv")
    assert sorted(r["label"] for r in labels) == ["NORMAL"] * 3 + ["PNEUMONIA"] * 3
    # subset drawn from train only
    train_sources = set(by[("train", "NORMAL")] + by[("train", "PNEUMONIA")])
    assert all(r["source"] in train_sources for r in labels)
    # seeded: same seed, same split
    out2 = tmp_path / "again"
    assert main(["data", "--folder", str(small_kermany), "--out", str(out2), "--per-class", "3", "--seed", "1"]) == 0
    assert (out2 / "splits.csv").read_text() == (out / "splits.csv").read_text()


def test_csv_source(small_kermany, tmp_path):
    csv_path = tmp_path / "list.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label"])
        for label in ("NORMAL", "PNEUMONIA"):
            for f in sorted((small_kermany / "train" / label).iterdir()):
                w.writerow([str(f), label])
    summary = D.prepare(tmp_path / "out", csv_path=csv_path, per_class=2, val_frac=0.25, seed=0, size=64)
    assert summary["counts"]["val"] == {"NORMAL": 3, "PNEUMONIA": 3}
    from PIL import Image

    with Image.open(next((tmp_path / "out" / "images").glob("*.png"))) as im:
        assert im.size == (64, 64)


def test_npz_source(shared_dir, tmp_path):
    npz = shared_dir / "data" / "pneumoniamnist" / "pneumoniamnist_28_balanced.npz"
    if not npz.is_file():
        skip_or_fail(f"{npz} not found", strict=SHARED_PRESENT)
    z = np.load(npz)
    summary = D.prepare(tmp_path / "mnist", npz=npz, per_class=4, seed=0)
    counts = summary["counts"]
    assert sum(counts["train"].values()) == len(z["train_labels"])
    assert sum(counts["test"].values()) == len(z["test_labels"])
    assert summary["subset"] == {"NORMAL": 4, "PNEUMONIA": 4}
    meta = (tmp_path / "mnist" / "images" / "metadata.jsonl").read_text().splitlines()
    assert len(meta) == 8


def test_missing_folder_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["data", "--folder", str(tmp_path / "nope"), "--out", str(out)]) == 1
    assert "image folder not found" in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary leftovers either


def test_npz_without_keys_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 28, 28), np.uint8), labels=np.zeros(2))
    out = tmp_path / "out"
    assert main(["data", "--npz", str(bad), "--out", str(out)]) == 1
    err = capsys.readouterr().err
    assert "train_images" in err and "lacks keys" in err
    assert not out.exists()
    with pytest.raises(ExportError):
        D.load_npz(bad)


def test_stratified_split_is_stratified():
    y = np.array([0] * 100 + [1] * 300)
    tr, va = D.stratified_split(y, 0.1, 0)
    assert len(va) == 40 and (y[va] == 0).sum() == 10 and not set(tr) & set(va)
    assert np.array_equal(D.stratified_split(y, 0.1, 0)[1], va)
