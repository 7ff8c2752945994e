"""cxr-export fixtures: same seed -> same bytes; golden format; committed fixtures agree with their goldens."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO_ROOT, skip_or_fail
from cxr_export.fixtures import IDS, fixture_bytes, write_fixtures


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """tiny models: one thread is several times faster than two on a busy 2-core machine"""
    import torch

    torch.set_num_threads(1)
    yield


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def _check_golden(doc):
    assert set(doc) == {"inputs", "outputs", "meta"}
    for t in list(doc["inputs"].values()) + list(doc["outputs"].values()):
        assert t["dtype"] in ("float32", "int64")
        assert len(t["data"]) == int(np.prod(t["dims"]))


def test_fixtures_are_deterministic(tmp_path):
    runs = []
    for i in range(2):
        models, goldens = tmp_path / f"m{i}", tmp_path / f"g{i}"
        write_fixtures(models, goldens, seed=0, families=["clip", "sd"])
        runs.append((_files(models), _files(goldens)))
    assert runs[0][0].keys() == runs[1][0].keys() and runs[0][0] == runs[1][0]  # ONNX, tokenizers, configs
    assert runs[0][1] == runs[1][1]  # goldens
    names = set(runs[0][1])
    for want in ("tiny-sd/generation_base.json", "tiny-sd/generation_lora.json", "tiny-sd/lcm_step.json",
                 "tiny-sd/lcm_timesteps.json", "tiny-sd/tokenizer_ids.json", "tiny-sd/unet_lora.json",
                 "tiny-sd/unet_scaled.json", "tiny-sd/pipeline_base_seed42.json", "tiny-sd/pipeline_lora_seed42.json",
                 "tiny-biomedclip/tokenizer_ids.json", "tiny-biomedclip/text_encoder.json"):
        assert want in names
    for name, data in runs[0][1].items():
        _check_golden(json.loads(data))
    manifest = json.loads((tmp_path / "m0" / "manifest.json").read_text())
    assert {e["id"]: e["weights"] for e in manifest["models"]} == {"tiny-biomedclip": "random-fixture",
                                                                    "tiny-sd": "random-fixture"}
    base = json.loads(runs[0][1]["tiny-sd/generation_base.json"])
    lora = json.loads(runs[0][1]["tiny-sd/generation_lora.json"])
    assert base["inputs"]["latents"] == lora["inputs"]["latents"]
    assert base["outputs"]["image"]["data"] != lora["outputs"]["image"]["data"]
    assert base["meta"]["timesteps"] == [999, 759, 499, 259]


def test_committed_fixtures_match_goldens():
    """public/models/tiny-* run under ONNX Runtime give their committed goldens (and the manifest's sha256)."""
    from cxr_export import manifest as mf
    from cxr_export.clip import run_onnx

    models, goldens = REPO_ROOT / "public" / "models", REPO_ROOT / "tests" / "goldens"
    entries = {e["id"]: e for e in mf.load(models).get("models", [])}
    if not all(i in entries for i in IDS.values()):
        skip_or_fail("the tiny fixtures are not all in public/models (run `cxr-export fixtures`)")
    # tiny-sd ships both UNet layouts (unet + unet_lora, and unet_scaled): +1.15 MB over the earlier 6 MB cap
    assert fixture_bytes(models, goldens) < 7_000_000
    for mid in IDS.values():
        e = entries[mid]
        assert e["weights"] == "random-fixture"
        for f in e["variants"]["fp32"]["files"]:
            assert mf.sha256_file(models / f["path"]) == f["sha256"], f["path"]
        for g in sorted((goldens / mid).glob("*.json")):
            doc = json.loads(g.read_text())
            graph = doc["meta"].get("graph")
            if not graph:
                continue
            feeds = {k: np.array(v["data"], np.float32 if v["dtype"] == "float32" else np.int64).reshape(v["dims"])
                     for k, v in doc["inputs"].items()}
            out = run_onnx(models / mid / graph, feeds)
            for k, v in doc["outputs"].items():
                assert np.allclose(out[k].reshape(-1), np.array(v["data"]), atol=1e-5), (mid, g.name, k)
