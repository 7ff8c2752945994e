"""cxr-export sam: one prompt interface for sam-vit-b / medsam / mobilesam / sam2-tiny (tiny random weights)."""

import json

import numpy as np
import pytest
import torch

from cxr_export.cli import main
from cxr_export.errors import ExportError
from cxr_export.sam import build_sam, export_sam, sample_inputs


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """tiny models: one thread is several times faster than two on a busy 2-core machine"""
    import torch

    torch.set_num_threads(1)
    yield


def _prompts(adapter, x):
    """(adapter feeds, transformers kwargs) for a points prompt and a box prompt."""
    pts = torch.from_numpy(x["point_coords"][:, :-1])
    lab = torch.from_numpy(x["point_labels"][:, :-1]).long()
    bc, bl = torch.from_numpy(x["box_coords"]), torch.from_numpy(x["box_labels"])
    if adapter.padding_point == "always":
        bc = torch.cat([bc, torch.zeros(1, 1, 2)], 1)
        bl = torch.cat([bl, -torch.ones(1, 1)], 1)
    return [
        ((torch.from_numpy(x["point_coords"]), torch.from_numpy(x["point_labels"])),
         dict(points=pts[:, None], labels=lab[:, None])),
        ((bc, bl), dict(boxes=torch.from_numpy(x["box_coords"]).reshape(1, 1, 4))),
    ]


@pytest.mark.parametrize("arch", ["sam-vit-b", "medsam", "mobilesam", "sam2-tiny"])
def test_sam_tiny_matches_transformers_and_exports(arch, tmp_path):
    adapter, info = build_sam(arch, None, "tiny", seed=0)
    x = sample_inputs(info, seed=3)
    with torch.no_grad():
        feats = adapter.encoder(torch.from_numpy(x["pixel_values"]))
    feats = feats if isinstance(feats, tuple) else (feats,)
    assert feats[-1].std() > 0.1  # re-initialised weights give a real signal
    empty_mask = torch.zeros(1, 1, info["mask_size"], info["mask_size"])
    for (coords, labels), ref_kwargs in _prompts(adapter, x):
        with torch.no_grad():
            masks, iou = adapter.decoder(*feats, coords, labels, empty_mask, torch.tensor([0.0]))
        ref_masks, ref_iou = adapter.reference(feats, **ref_kwargs)
        assert masks.shape == (1, 3, info["mask_size"], info["mask_size"]) and iou.shape == (1, 3)
        assert masks.std() > 1e-2
        assert torch.allclose(masks, ref_masks, atol=1e-5) and torch.allclose(iou, ref_iou, atol=1e-5)

    out = tmp_path / "models"
    entry = export_sam(adapter, info, out, f"tiny-{arch}", "random-fixture", source="test")
    par = entry["config"]["parity"]
    assert par["image_encoder"] <= 1e-4 and par["prompt_decoder"] <= 1e-4, par
    io = entry["io"]
    assert io["prompt_decoder"]["inputs"][-4:] == ["point_coords", "point_labels", "mask_input", "has_mask_input"]
    assert io["prompt_decoder"]["outputs"] == ["masks_low_res", "iou_predictions"]
    assert io["image_encoder"]["outputs"][-1] == "image_embeddings"
    if arch == "sam2-tiny":
        assert io["image_encoder"]["outputs"] == ["high_res_feats_0", "high_res_feats_1", "image_embeddings"]
        assert entry["config"]["append_padding_point"] == "always"
    assert (out / f"tiny-{arch}" / "prompt_decoder.onnx").exists()


def test_sam_decoder_takes_any_number_of_points(tmp_path):
    from cxr_export.clip import run_onnx

    adapter, info = build_sam("sam-vit-b", None, "tiny", seed=0)
    export_sam(adapter, info, tmp_path, "s", "random-fixture")
    emb = run_onnx(tmp_path / "s" / "image_encoder.onnx",
                   {"pixel_values": np.zeros((1, 3, 64, 64), np.float32)})["image_embeddings"]
    for n in (1, 5):
        out = run_onnx(tmp_path / "s" / "prompt_decoder.onnx", {
            "image_embeddings": emb, "point_coords": np.full((1, n, 2), 10.0, np.float32),
            "point_labels": np.ones((1, n), np.float32), "mask_input": np.zeros((1, 1, 32, 32), np.float32),
            "has_mask_input": np.zeros(1, np.float32)})
        assert out["masks_low_res"].shape == (1, 3, 32, 32)


def test_single_mask_mode(tmp_path):
    assert main(["sam", "--arch", "sam-vit-b", "--random-init", "--size", "tiny", "--single-mask",
                 "--out-dir", str(tmp_path), "--id", "s1"]) == 0
    e = json.loads((tmp_path / "manifest.json").read_text())["models"][0]
    assert e["config"]["num_masks"] == 1 and e["config"]["multimask_output"] is False
    assert e["weights"] == "random-fixture"


def test_local_checkpoint_folder(tmp_path):
    """--checkpoint DIR (save_pretrained layout, as MedSAM / SAM ship) exports with the folder's weights and norm."""
    adapter, _ = build_sam("sam-vit-b", None, "tiny", seed=5)
    ck = tmp_path / "medsam-tiny"
    adapter.model.save_pretrained(ck)
    (ck / "preprocessor_config.json").write_text(json.dumps({"image_mean": [0.5, 0.5, 0.5],
                                                             "image_std": [0.25, 0.25, 0.25]}))
    out = tmp_path / "models"
    assert main(["sam", "--arch", "medsam", "--checkpoint", str(ck), "--out-dir", str(out)]) == 0
    e = json.loads((out / "manifest.json").read_text())["models"][0]
    assert e["id"] == "medsam" and e["weights"] == "pretrained" and e["preprocessing"]["std"] == [0.25] * 3
    assert e["variants"]["fp32"]["parity"]["max_abs_diff"] <= 1e-4
    loaded, _ = build_sam("medsam", str(ck), "tiny", seed=0)
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.encoder(x), adapter.encoder(x), atol=1e-6)


def test_wrong_checkpoint_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "ck"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    out = tmp_path / "models"
    assert main(["sam", "--arch", "medsam", "--checkpoint", str(bad), "--out-dir", str(out)]) == 1
    err = capsys.readouterr().err
    assert "model_type 'bert'" in err and "'sam'" in err
    assert not out.exists()
    with pytest.raises(ExportError, match="mobile_sam.pt"):
        build_sam("mobilesam", str(bad), "tiny", 0)
    assert main(["sam", "--arch", "sam-vit-b", "--out-dir", str(out)]) == 1  # neither checkpoint nor random
