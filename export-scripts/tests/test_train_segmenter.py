"""train-segmenter on tiny settings (64 px architecture, a handful of real cxr-lung-masks images): the split, the
per-lung targets, the loss falling, bit-exact resume, and the exported graphs' SAM interface. The shipped
public/models/lung-sam, when present, is checked against its golden."""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from cxr_export import segmenter_eval as se
from cxr_export import lung_segmenter as ts
from cxr_export import train_segmenter


@pytest.fixture(scope="module")
def lung_dir(shared_dir) -> Path:
    p = shared_dir / "data" / "cxr-lung-masks"
    if not (p / "index.csv").exists():
        pytest.skip(f"cxr-lung-masks not found at {p}")
    return p


def _args(tmp: Path, lung_dir: Path, **kw) -> argparse.Namespace:
    base = dict(data=lung_dir, run_dir=tmp / "run", out_dir=tmp / "models", model_id="lung-sam-test",
                golden=tmp / "golden.json", steps=6, batch=2, lr=3e-3, warmup=2, aug=1.0, holdout=0.2, seed=0,
                threads=1, time_budget_min=None, checkpoint_every=2, restart=False, tiny=True, limit_images=8,
                train_only=True, stop_after=None, finetune_steps=0, finetune_lr=6e-4)
    base.update(kw)
    return argparse.Namespace(**base)


def test_split_by_source_holds_out_a_fifth(lung_dir):
    rows = list(csv.DictReader(open(lung_dir / "index.csv")))
    groups = [ts.source_group(r) for r in rows]
    tr, ev = ts.split_indices(groups, seed=0, holdout=0.2)
    assert len(tr) + len(ev) == len(rows) and not set(tr) & set(ev)
    assert len(ev) >= 0.2 * len(rows)
    assert not {groups[i] for i in tr} & {groups[i] for i in ev}  # no paper / case on both sides
    tr2, ev2 = ts.split_indices(groups, seed=0, holdout=0.2)
    assert np.array_equal(ev, ev2)
    _, ev3 = ts.split_indices(groups, seed=1, holdout=0.2)
    assert not np.array_equal(ev, ev3)


def test_split_lungs_assigns_by_box_and_keeps_ignore():
    mask = np.zeros((20, 40), np.uint8)
    mask[2:18, 2:18] = 255  # right lung (image left)
    mask[2:18, 22:38] = 255  # left lung
    mask[5:8, 5:8] = 127
    boxes = {"right_lung": [1, 1, 19, 19], "left_lung": [21, 1, 39, 19]}
    right, left, ignore = ts.split_lungs(mask, boxes)
    assert right[10, 10] and not left[10, 10] and left[10, 30] and not right[10, 30]
    assert not (right & left).any() and (right | left).sum() == (mask == 255).sum()
    assert ignore.sum() == 9 and not (ignore & (right | left)).any()
    d, j = ts.dice_iou(right, right | ignore, ignore)  # ignore pixels count for nothing
    assert d == 1.0 and j == 1.0


def test_prompts_follow_the_sam_onnx_convention():
    rng = np.random.default_rng(0)
    t = np.zeros((64, 64), np.float32)
    t[10:40, 5:30] = 1
    w = np.ones_like(t)
    box = np.array([5, 10, 30, 40], np.float32)
    c, lab = ts.sample_prompts(rng, "box", t, w, box, 64, 1)
    assert lab.tolist() == [2, 3] and c.tolist() == [[5, 10], [30, 40]]
    c, lab = ts.sample_prompts(rng, "centre-click", t, w, box, 64, 1)
    assert lab.tolist() == [1, -1] and c[1].tolist() == [0, 0]
    c, lab = ts.sample_prompts(rng, "box+clicks", t, w, box, 64, 2)
    assert lab[-2:].tolist() == [2, 3] and set(lab[:-2].tolist()) <= {0, 1}
    c2, lab2 = ts.insert_click(c, lab, (3.0, 4.0), 1.0)
    assert lab2[-2:].tolist() == [2, 3] and c2[-3].tolist() == [3, 4] and len(lab2) == len(lab) + 1
    c, lab = ts.sample_prompts(rng, "clicks", t, w, box, 64, 3)
    assert lab[0] == 1 and lab[-1] == -1 and len(lab) == 4
    fg = [p for p, l in zip(c, lab) if l == 1]
    assert all(t[int(round(y)), int(round(x))] == 1 for x, y in fg)


def test_loss_falls(lung_dir, tmp_path):
    args = _args(tmp_path, lung_dir, steps=30, aug=0.0, batch=3, warmup=3)
    s = ts.train(args)
    first, last = np.mean(s["losses"][:5]), np.mean(s["losses"][-5:])
    assert s["done"] and last < 0.9 * first, (first, last)


def test_resume_continues_from_checkpoint_bit_exact(lung_dir, tmp_path):
    import torch

    full = ts.train(_args(tmp_path / "a", lung_dir))
    part = ts.train(_args(tmp_path / "b", lung_dir, stop_after=3))
    assert not part["done"] and part["step"] == 3
    rest = ts.train(_args(tmp_path / "b", lung_dir))
    assert rest["done"] and rest["step"] == 6 and len(rest["losses"]) == 3
    np.testing.assert_allclose(part["losses"] + rest["losses"], full["losses"], rtol=1e-5)
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=False)["model"]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) < 1e-5


def test_export_has_the_sam_interface(lung_dir, tmp_path, repo_root):
    import onnxruntime as ort

    args = _args(tmp_path, lung_dir, steps=2, train_only=False)
    out = train_segmenter.run(args)
    manifest = json.loads((tmp_path / "models" / "manifest.json").read_text())
    entry = next(e for e in manifest["models"] if e["id"] == "lung-sam-test")
    ref = next(e for e in json.loads((repo_root / "public" / "models" / "manifest.json").read_text())["models"]
               if e["id"] == "tiny-sam")
    assert entry["family"] == "sam" and entry["weights"] == "trained"
    assert entry["io"] == ref["io"]
    for k in ("resize", "pad", "append_padding_point", "point_labels", "multimask_output", "num_masks"):
        assert entry["config"][k] == ref["config"][k], k
    assert set(entry["variants"]) == {"fp32", "fp16"}
    cfg = entry["config"]
    s, e, c, m = cfg["image_size"], cfg["embedding_size"], cfg["embedding_dim"], cfg["mask_size"]
    assert (s, e, m) == (64, 16, 64) and entry["preprocessing"]["size"] == [s, s]
    folder = tmp_path / "models" / "lung-sam-test"
    for stem in ("image_encoder", "prompt_decoder"):
        for suffix in (".onnx", ".fp16.onnx"):
            assert (folder / f"{stem}{suffix}").exists()
    enc = ort.InferenceSession(str(folder / "image_encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "prompt_decoder.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in enc.get_inputs()] == ["pixel_values"] and enc.get_inputs()[0].shape == [1, 3, s, s]
    emb = enc.run(None, {"pixel_values": np.zeros((1, 3, s, s), np.float32)})[0]
    assert emb.shape == (1, c, e, e)
    assert [i.name for i in dec.get_inputs()] == ref["io"]["prompt_decoder"]["inputs"]
    for n_points in (2, 4):  # dynamic number of points
        masks, iou = dec.run(None, {"image_embeddings": emb,
                                    "point_coords": np.full((1, n_points, 2), 10, np.float32),
                                    "point_labels": np.array([[1] * (n_points - 1) + [-1]], np.float32),
                                    "mask_input": np.zeros((1, 1, m, m), np.float32),
                                    "has_mask_input": np.ones((1,), np.float32)})
        assert masks.shape == (1, 3, m, m) and iou.shape == (1, 3)
    assert entry["config"]["parity"]["heldout_vs_pytorch"]["masks_low_res"] < 1e-4
    golden = json.loads((tmp_path / "golden.json").read_text())
    assert [r["image"] for r in golden["images"]] == entry["card"]["training"]["heldout_images"]
    assert golden["metrics"] == out["metrics"]
    assert set(golden["images"][0]["lungs"]) == set(ts.LUNGS)


def _shipped_entry(repo_root: Path):
    manifest = json.loads((repo_root / "public" / "models" / "manifest.json").read_text())
    return next((e for e in manifest["models"] if e["id"] == "lung-sam"), None)


def test_shipped_lung_sam_matches_its_golden(repo_root, lung_dir):
    entry = _shipped_entry(repo_root)
    if entry is None:
        pytest.skip("public/models has no lung-sam entry")
    models = repo_root / "public" / "models"
    files = {f["path"]: f for v in entry["variants"].values() for f in v["files"]}
    for f in files.values():
        assert (models / f["path"]).stat().st_size == f["bytes"], f["path"]
    assert sum(f["bytes"] for f in files.values()) <= 12 * 1024 * 1024
    assert entry["weights"] == "trained" and entry["family"] == "sam"
    golden = json.loads((repo_root / "tests" / "goldens" / "lung-sam" / "heldout.json").read_text())
    cfg = entry["config"]
    pair = se.OrtPair(models / "lung-sam" / "image_encoder.onnx", models / "lung-sam" / "prompt_decoder.onnx")
    names = [r["image"] for r in golden["images"][:3]]
    got = se.evaluate(pair, lung_dir, names, cfg["image_size"], cfg["mask_size"])
    for g, r in zip(got["images"], golden["images"][:3]):
        for lung in ts.LUNGS:
            for kind in se.PROMPTS:
                assert abs(g["lungs"][lung][kind]["dice"] - r["lungs"][lung][kind]["dice"]) < 1e-3
    # the card's numbers are the golden's
    assert entry["card"]["metrics"]["box_right_lung_dice_mean"] == golden["metrics"]["box"]["right_lung"]["dice"]["mean"]


def test_cli_registers_train_segmenter():
    from cxr_export.cli import build_parser

    args = build_parser().parse_args(["train-segmenter", "--steps", "3", "--time-budget-min", "1", "--threads", "1"])
    assert args.func is train_segmenter.run and args.steps == 3 and args.time_budget_min == 1 and args.threads == 1
    assert str(args.run_dir).endswith("export-scripts/runs/lung-sam")


def test_finetune_phase_continues_after_the_main_schedule(lung_dir, tmp_path):
    s = ts.train(_args(tmp_path, lung_dir, steps=3, finetune_steps=2))
    assert s["done"] and s["step"] == 5 and len(s["losses"]) == 5
    log = [json.loads(x) for x in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3, 4, 5]
