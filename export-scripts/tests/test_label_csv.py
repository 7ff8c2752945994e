"""label_csv writes cells exactly as app/lib/util/csv.ts csvLine does (run through tsx on the same cells): numbers
rounded to 6 decimals and printed the JavaScript way, text neutralised against CSV injection (OWASP) and quoted.
And the metrics that label_csv computes itself agree with their definitions on hand-checkable cases."""
from __future__ import annotations

import json
import random
import subprocess

import pytest

from conftest import REPO_ROOT

from cxr_export.label_csv import _auc, csv_line, ece

TS = """import { csvLine } from './app/lib/util/csv';
const rows = JSON.parse(require('fs').readFileSync(0, 'utf8'));
process.stdout.write(JSON.stringify(rows.map((r: unknown[]) => csvLine(r.map((c) => (c === 'NaN' ? NaN : c))))));"""


def test_cells_match_csv_ts():
    rng = random.Random(22)
    nums = [0, 1, -1, 1e-6, 5e-7, 4.9e-7, -5e-7, -2.5e-6, 2.5e-6, 0.1 + 0.2, 1 / 3, -0.25, 123456.7891234, 1e20, 1e27,
            0.43565431237220764, 34.20766377074031, 1e-4, 1.5e-5, 999999.9999995]
    nums += [rng.uniform(-1, 1) * 10 ** rng.randint(-7, 7) for _ in range(300)]
    texts = ["", "NORMAL", "=HYPERLINK(\"x\")", "+1", "-1", "@sum", "\tx", "\rx", "'quoted", "'=x", 'he said "hi"',
             "a,b", "line\nbreak", "dir/=x.png", "ünïcode/图像.png"]
    rows = [nums[i:i + 10] for i in range(0, len(nums), 10)] + [texts, [True, False, None, "NaN"]]
    r = subprocess.run([str(REPO_ROOT / "node_modules" / ".bin" / "tsx"), "--eval", TS], input=json.dumps(rows),
                       cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    ts = json.loads(r.stdout)
    py = [csv_line([float("nan") if c == "NaN" else c for c in row]) for row in rows]
    assert py == ts


def test_auc_and_ece_on_hand_checked_cases():
    # Mann-Whitney with a tie: pairs (pos, neg): (.8,.2) 1, (.8,.5) 1, (.5,.2) 1, (.5,.5) 1/2 -> 3.5/4
    assert _auc([1, 1, 0, 0], [0.8, 0.5, 0.5, 0.2]) == pytest.approx(0.875)
    assert _auc([1, 1], [0.1, 0.2]) is None
    # one bin (0.8 in bin 11 of 15): |mean y - mean p| = |0.5 - 0.8|
    assert ece([1, 0], [0.8, 0.8]) == pytest.approx(0.3)
    # p = 0 falls in the first bin, p = 1 in the last
    assert ece([0, 1], [0.0, 1.0]) == pytest.approx(0.0)
