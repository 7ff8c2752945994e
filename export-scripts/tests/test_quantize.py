import pytest

from cxr_export import manifest as mf
from cxr_export.cli import main
from cxr_export.errors import ExportError
from cxr_export.parity import run_onnx
from cxr_export.quantize import quantize, sample_feeds


@pytest.fixture()
def exported(tmp_path):
    models = tmp_path / "models"
    assert main(["classifier", "--random-init", "--size", "tiny", "--out-dir", str(models), "--id", "q"]) == 0
    return models


@pytest.mark.parametrize("dtype", ["int8", "fp16"])
def test_quantize_writes_variant(exported, dtype):
    assert main(["quantize", "--id", "q", "--dtype", dtype, "--out-dir", str(exported)]) == 0
    path = exported / "q" / f"model.{dtype}.onnx"
    assert path.is_file() and path.stat().st_size < (exported / "q" / "model.onnx").stat().st_size
    entry = mf.load(exported)["models"][0]
    assert set(entry["variants"]) == {"fp32", dtype}
    v = entry["variants"][dtype]
    assert v["files"][0]["path"] == f"q/model.{dtype}.onnx" and v["files"][0]["role"] == "model"
    assert 0.0 < v["parity"]["max_abs_diff"] < 0.25
    feeds = sample_feeds(path)
    out = run_onnx(path, feeds)
    assert out["probabilities"].dtype.name == "float32"  # float32 I/O kept
    assert set(out) == {"logits", "probabilities", "embedding", "attentions"}


def test_quantize_unknown_id(exported):
    with pytest.raises(ExportError, match="no model"):
        quantize(exported, "nope", "int8")
    assert sorted(p.name for p in (exported / "q").iterdir()) == ["model.onnx"]
