"""`cxr-export label` (Python, onnxruntime) agrees with `npm run label` (Node, onnxruntime-web, run through tsx as
tests/unit/batch/app-cli-parity.test.ts does) on real Kermany test images with the trained pneumonia-vit and
cxr-clip: same rows, same predicted labels, OOD flags and auto labels, probabilities / OOD scores / zero-shot
probabilities within 1e-4, the same sidecar and metrics.

Decoders: the CLI decodes JPEG with jpeg-js, Python with Pillow (libjpeg-turbo, as browsers do); they differ by
+-1 on a few percent of pixels. So the exact check runs on lossless PNGs of the same pixels (both sides decode PNG
identically), and on the JPEGs themselves the rows whose decoded pixels differ are named and counted
(label_compare.jpeg_decoders_differ) and only their labels are compared."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT

from cxr_export.label_compare import compare, jpeg_decoders_differ, read_csv

TSX = REPO_ROOT / "node_modules" / ".bin" / "tsx"
PER_CLASS = 12
ADULT = 3
TIMING = {"images_per_second", "seconds", "threads", "batch", "out", "resumed_rows", "engine", "workers",
          "first_batch_seconds", "ray_init_seconds"}


def py_label(inp, out, *extra) -> dict:
    r = subprocess.run([sys.executable, "-m", "cxr_export", "label", str(inp), "--out", str(out), *extra],
                       cwd=REPO_ROOT / "export-scripts", capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "export-scripts")})
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def node_label(inp, out_csv, *extra) -> dict:
    if not TSX.exists():
        pytest.fail(f"{TSX} missing: run npm ci (npm run setup) first")
    Path(out_csv).parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(TSX), "app/cli/label.ts", str(inp), "--out", str(out_csv), "--threads", "1", *extra],
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def kermany_subset(shared_dir: Path, dst: Path, n: int, as_png: bool) -> Path:
    """n images per class of the Kermany test split under dst/NORMAL, dst/PNEUMONIA (PNG: Pillow's pixels, lossless),
    plus ADULT lung-mask images of other sizes (PNG only: the resize path), a text file named .png (a skipped row on both sides) and a top-level image whose name starts with '='
    (its image_id cell is neutralised against CSV injection on both sides)."""
    from PIL import Image

    src = shared_dir / "data" / "kermany-cxr-224" / "test"
    for cls in ("NORMAL", "PNEUMONIA"):
        (dst / cls).mkdir(parents=True)
        for f in sorted((src / cls).iterdir())[:n]:
            if as_png:
                Image.open(f).convert("RGB").save(dst / cls / (f.stem + ".png"))
            else:
                (dst / cls / f.name).symlink_to(f)
    first = sorted((src / "NORMAL").iterdir())[0]
    if as_png:  # adult X-rays of other sizes (up to 1024 px): both sides resize them to 224 (Pillow's bilinear)
        (dst / "adult").mkdir()
        for f in sorted((shared_dir / "data" / "cxr-lung-masks" / "images").iterdir())[:ADULT]:
            Image.open(f).convert("RGB").save(dst / "adult" / (f.stem + ".png"))
        Image.open(first).convert("RGB").save(dst / "=HYPERLINK(1).png")
    else:
        (dst / "=HYPERLINK(1).jpeg").symlink_to(first)
    (dst / "NORMAL" / "notes.png").write_text("this is text, not a PNG")
    return dst


@pytest.fixture(scope="module")
def png_runs(tmp_path_factory, shared_dir):
    d = tmp_path_factory.mktemp("label-png")
    inp = kermany_subset(shared_dir, d / "in", PER_CLASS, as_png=True)
    py = py_label(inp, d / "py", "--clip", "cxr-clip", "--batch", "8")
    node = node_label(inp, d / "node" / "labeled_dataset.csv", "--clip", "cxr-clip", "--batch", "8")
    return d, py, node


def test_same_rows_labels_and_scores_on_the_same_pixels(png_runs):
    d, _, _ = png_runs
    py, node = read_csv(d / "py" / "labeled_dataset.csv"), read_csv(d / "node" / "labeled_dataset.csv")
    rep = compare(py, node, tol=1e-4)
    print(json.dumps({k: rep[k] for k in ("rows_py", "rows_node", "same_pixels")}))
    assert len(py) == 2 * PER_CLASS + 1 + ADULT and rep["agree"], rep
    assert sum(i.startswith("adult/") for i in py) == ADULT
    # the header, the row order and the neutralised '=...' cell are byte-identical
    a = (d / "py" / "labeled_dataset.csv").read_bytes().split(b"\r\n")
    b = (d / "node" / "labeled_dataset.csv").read_bytes().split(b"\r\n")
    assert a[0] == b[0] and [x.split(b",")[0] for x in a] == [x.split(b",")[0] for x in b]
    assert any(x.startswith(b'"\'=HYPERLINK(1).png"') for x in a)


def test_same_sidecar_and_metrics(png_runs):
    d, py, node = png_runs
    m_py = json.loads((d / "py" / "labeled_dataset.meta.json").read_text())
    m_node = json.loads((d / "node" / "labeled_dataset.meta.json").read_text())
    assert list(m_py) == list(m_node)
    assert {**m_py, "created": 0} == {**m_node, "created": 0}
    assert set(py) - TIMING == set(node) - TIMING
    for k in set(node) - TIMING:
        a, b = py[k], node[k]
        if isinstance(b, float):
            assert a == pytest.approx(b, abs=1e-4), k
        else:
            assert a == b, k
    assert py["skipped"] == node["skipped"] == 1 and py["ood_flagged"] is not None


def test_jpeg_rows_where_decoders_differ_are_named_and_counted(tmp_path, shared_dir):
    inp = kermany_subset(shared_dir, tmp_path / "in", 6, as_png=False)
    py_label(inp, tmp_path / "py")
    node_label(inp, tmp_path / "node.csv")
    py, node = read_csv(tmp_path / "py" / "labeled_dataset.csv"), read_csv(tmp_path / "node.csv")
    differ = jpeg_decoders_differ([inp / i for i in py], REPO_ROOT)
    ids = {i for i in py if differ[str(inp / i)]}
    rep = compare(py, node, 1e-4, ids)
    print(f"decoders differ on {len(ids)} of {len(py)} JPEGs: {sorted(ids)}; "
          f"max |dP| there {rep['decoders_differ']['max_abs_diff']['classifier_probability']:.2e}")
    assert rep["agree"], rep  # rows with identical pixels agree within 1e-4; none is dropped
    assert rep["decoders_differ"]["n"] == len(ids) and rep["decoders_differ"]["images"] == sorted(ids)
    # jpeg-js and libjpeg-turbo are different IDCTs: on these images they differ, by far less than a label's margin
    assert ids and rep["decoders_differ"]["max_abs_diff"]["classifier_probability"] < 0.02
