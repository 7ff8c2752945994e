"""Agreement of two labeled_dataset.csv files (the Python/Ray job's and `npm run label`'s), and where the two JPEG
decoders disagree on the pixels (Node's jpeg-js vs Pillow's libjpeg-turbo), so that rows whose inputs differ are
named and counted instead of hidden in a tolerance.

    python -m cxr_export.label_compare PY.csv NODE.csv [--images DIR] [--tol 1e-4]

prints a JSON report: rows, rows only in one file, label disagreements, max |delta| per numeric column, and with
--images the rows whose decoded JPEG pixels differ (and how they compare) separately from the rows whose pixels agree.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

TEXT = ["auto_label", "ground_truth", "classifier_prediction", "ood"]
NUMERIC = ["confidence_score", "classifier_probability", "ood_score"]

# Node side: jpeg-js exactly as app/platform/node/decode.ts calls it (RGBA, typed arrays); one sha256 of RGB per file.
_NODE_DIGEST = r"""
const fs = require('fs'); const crypto = require('crypto'); const jpeg = require('jpeg-js');
const out = {};
for (const f of JSON.parse(fs.readFileSync(0, 'utf8'))) {
  const img = jpeg.decode(fs.readFileSync(f), { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 1024 });
  const rgb = Buffer.alloc(img.width * img.height * 3);
  for (let i = 0, j = 0; i < img.data.length; i += 4, j += 3) { rgb[j] = img.data[i]; rgb[j + 1] = img.data[i + 1]; rgb[j + 2] = img.data[i + 2]; }
  out[f] = `${img.width}x${img.height}:` + crypto.createHash('sha256').update(rgb).digest('hex');
}
process.stdout.write(JSON.stringify(out));
"""


def read_csv(path) -> dict[str, dict]:
    """labeled_dataset.csv -> {image_id: row}; the CSV-injection apostrophe of csv.ts undone on image_id."""
    text = Path(path).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    out = {}
    for r in rows:
        iid = r["image_id"]
        if len(iid) > 1 and iid[0] == "'" and iid[1] in "=+-@\t\r'":
            iid = iid[1:]
        out[iid] = r
    return out


def jpeg_decoders_differ(files: list[Path], repo_root: Path) -> dict[str, bool]:
    """{str(file): True when jpeg-js (Node, the CLI's decoder) and Pillow decode different RGB pixels}."""
    from PIL import Image

    r = subprocess.run(["node", "-e", _NODE_DIGEST], input=json.dumps([str(f) for f in files]), cwd=repo_root,
                       capture_output=True, text=True, timeout=600, check=True)
    node = json.loads(r.stdout)
    out = {}
    for f in files:
        with Image.open(f) as im:
            a = np.ascontiguousarray(np.asarray(im.convert("RGB"), np.uint8))
        out[str(f)] = node[str(f)] != f"{a.shape[1]}x{a.shape[0]}:" + hashlib.sha256(a.tobytes()).hexdigest()
    return out


def compare(py: dict[str, dict], node: dict[str, dict], tol: float = 1e-4, differ: set[str] | None = None) -> dict:
    """Row-by-row agreement. `differ`: image_ids whose decoded pixels differ between the two sides; those rows are
    reported on their own (count, names, label flips, max deltas) and left out of `agree`'s check."""
    differ = differ or set()
    common = sorted(set(py) & set(node))

    def stats(ids):
        flips = [i for i in ids if any(py[i][c] != node[i][c] for c in TEXT)]
        d = {c: max([abs(float(py[i][c] or "nan") - float(node[i][c] or "nan")) for i in ids] or [0.0]) for c in NUMERIC}
        zs = [c for c in (py[ids[0]] if ids else {}) if c.startswith("zs_")]
        d.update({c: max(abs(float(py[i][c]) - float(node[i][c])) for i in ids) for c in zs})
        over = [i for i in ids if any(abs(float(py[i][c] or "nan") - float(node[i][c] or "nan")) > tol for c in NUMERIC + zs)]
        return {"n": len(ids), "label_or_flag_differs": flips, "max_abs_diff": d, "over_tol": over}

    same = [i for i in common if i not in differ]
    dif = [i for i in common if i in differ]
    rep = {"rows_py": len(py), "rows_node": len(node), "only_py": sorted(set(py) - set(node)),
           "only_node": sorted(set(node) - set(py)), "tol": tol, "same_pixels": stats(same)}
    rep["decoders_differ"] = {**stats(dif), "images": dif}
    rep["agree"] = (not rep["only_py"] and not rep["only_node"] and not rep["same_pixels"]["label_or_flag_differs"]
                    and not rep["same_pixels"]["over_tol"])
    return rep


def main(argv=None) -> int:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("py_csv")
    p.add_argument("node_csv")
    p.add_argument("--images", help="the labelled folder: JPEG rows whose decoders differ are reported apart")
    p.add_argument("--tol", type=float, default=1e-4)
    a = p.parse_args(argv)
    py, node = read_csv(a.py_csv), read_csv(a.node_csv)
    differ: set[str] = set()
    if a.images:
        root = Path(a.images)
        jpgs = [root / i for i in py if Path(i).suffix.lower() in (".jpg", ".jpeg")]
        d = jpeg_decoders_differ(jpgs, Path(__file__).resolve().parents[2])
        differ = {i for i in py if d.get(str(root / i))}
    rep = compare(py, node, a.tol, differ)
    print(json.dumps(rep, indent=1))
    return 0 if rep["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
