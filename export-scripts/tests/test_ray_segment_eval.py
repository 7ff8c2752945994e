"""`cxr-export segment-eval --engine ray` (two Ray actors holding lung-sam's ONNX Runtime sessions) reports the same
Dice / IoU as `npm run segment-eval` (the app's SAM engine in Node) on real lung-mask images: the same images scored
and skipped, per image and lung within 2e-3 (the two sides decode the JPEGs with different decoders: jpeg-js and
libjpeg-turbo), the summary means within 1e-3."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT

from test_label_parity import TSX

LIMIT = 6


def _lines(stdout: str) -> tuple[dict, dict]:
    lines = stdout.strip().splitlines()
    per = {}
    for line in lines[:-1]:
        name, *cells = line.split("\t")
        if len(cells) == 2:
            per[name] = [float(x) for c in cells for x in c.split()[2::2]]
    return per, json.loads(lines[-1])


def test_ray_segment_eval_matches_npm_run_segment_eval(shared_dir):
    data = shared_dir / "data" / "cxr-lung-masks"
    py = subprocess.run([sys.executable, "-m", "cxr_export", "segment-eval", str(data), "--engine", "ray", "--workers", "2",
                         "--limit", str(LIMIT), "--batch", "3"], cwd=REPO_ROOT / "export-scripts", capture_output=True,
                        text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "export-scripts")})
    assert py.returncode == 0, py.stderr[-3000:]
    node = subprocess.run([str(TSX), "app/cli/segment-eval.ts", str(data), "--limit", str(LIMIT)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=600)
    assert node.returncode == 0, node.stderr[-3000:]
    (p_rows, p), (n_rows, n) = _lines(py.stdout), _lines(node.stdout)
    assert p["engine"] == "ray" and p["images"] == n["images"] == LIMIT and p["skipped"] == n["skipped"]
    assert list(p_rows) == list(n_rows) and p["failed"] == n["failed"] == []
    for name in n_rows:  # right dice, right iou, left dice, left iou (4 decimals as printed)
        assert p_rows[name] == pytest.approx(n_rows[name], abs=2e-3), name
    for lung in ("right_lung", "left_lung"):
        for m in ("dice", "iou"):
            assert p["per_lung"][lung][m]["n"] == n["per_lung"][lung][m]["n"] == LIMIT
            assert p["per_lung"][lung][m]["mean"] == pytest.approx(n["per_lung"][lung][m]["mean"], abs=1e-3)
            assert p["per_lung"][lung][m]["mean"] > 0.8
