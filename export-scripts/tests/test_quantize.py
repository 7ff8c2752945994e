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
    assert v.get("activation_quantization") == ("dynamic" if dtype == "int8" else None)
    feeds = sample_feeds(path)
    out = run_onnx(path, feeds)
    assert out["probabilities"].dtype.name == "float32"  # float32 I/O kept
    assert set(out) == {"logits", "probabilities", "embedding", "attentions"}


def test_quantize_unknown_id(exported):
    with pytest.raises(ExportError, match="no model"):
        quantize(exported, "nope", "int8")
    assert sorted(p.name for p in (exported / "q").iterdir()) == ["model.onnx"]


def test_int8_qdq_static_is_calibrated_on_real_images(exported, kermany_dir):
    """--int8-method qdq: QuantizeLinear/DequantizeLinear pairs around the MatMuls (static QDQ, no on-the-fly
    DynamicQuantizeLinear), activation scales from real Kermany train images, output close to fp32 on a real image."""
    import numpy as np
    import onnx

    from cxr_export.images import preprocess_file

    assert main(["quantize", "--id", "q", "--dtype", "int8", "--int8-method", "qdq", "--out-dir", str(exported)]) == 0
    path = exported / "q" / "model.int8.onnx"
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "DynamicQuantizeLinear" not in ops
    entry = mf.load(exported)["models"][0]
    assert "quantize_static int8 QDQ" in entry["variants"]["int8"]["parity"]["reference"]
    assert entry["variants"]["int8"]["activation_quantization"] == "static"
    from cxr_export.parity import batch_coupled

    assert not batch_coupled(path) and batch_coupled_dynamic(exported)
    img = sorted((kermany_dir / "test" / "NORMAL").iterdir())[0]
    x = preprocess_file(img, entry["preprocessing"])[None]
    ref = run_onnx(exported / "q" / "model.onnx", {"pixel_values": x})["probabilities"]
    got = run_onnx(path, {"pixel_values": x})["probabilities"]
    assert np.abs(ref - got).max() < 0.05


def batch_coupled_dynamic(models) -> bool:
    """The dynamic int8 graph of the same model is batch-coupled (parity.batch_coupled sees DynamicQuantizeLinear)."""
    from cxr_export.parity import batch_coupled

    assert main(["quantize", "--id", "q", "--dtype", "int8", "--out-dir", str(models)]) == 0
    return batch_coupled(models / "q" / "model.int8.onnx")


def test_int8_qdq_keeps_the_attention_products_float(exported, kermany_dir):
    """Only MatMuls with a weight operand are quantized: quantize_static's MatMulConstBOnly is ignored in QDQ format,
    and quantizing QK^T and softmax(.)V (scores in steps of ~1 before the softmax) was what drifted the card 0.021."""
    import onnx

    assert main(["quantize", "--id", "q", "--dtype", "int8", "--int8-method", "qdq", "--out-dir", str(exported)]) == 0
    g = onnx.load(str(exported / "q" / "model.int8.onnx")).graph
    producer = {o: n for n in g.node for o in n.output}
    weight_mm, attention_mm = 0, 0
    for n in g.node:
        if n.op_type != "MatMul":
            continue
        quantized = [producer.get(i) is not None and producer[i].op_type == "DequantizeLinear" for i in n.input]
        if all(quantized):
            weight_mm += 1
        else:
            assert not any(quantized), f"{n.name}: one operand quantized"
            attention_mm += 1
    assert weight_mm > 0 and attention_mm > 0
    assert not any(n.op_type == "QuantizeLinear" and producer.get(n.input[0]) is not None
                   and producer[n.input[0]].op_type == "Softmax" for n in g.node)


def test_int8_qdq_clip_quantizes_the_image_tower_only(tmp_path, kermany_dir):
    """CLIP: the image tower (pixel_values) is quantized statically; the text tower has no image calibration set and
    stays the fp32 file, shared by the int8 variant, so the whole variant is batch-independent ('static')."""
    models = tmp_path / "m"
    assert main(["clip", "--random-init", "--size", "tiny", "--out-dir", str(models), "--id", "c"]) == 0
    v = quantize(models, "c", "int8", int8_method="qdq")
    paths = {f["role"]: f["path"] for f in v["files"]}
    assert paths["image_encoder"] == "c/image_encoder.int8.onnx" and paths["text_encoder"] == "c/text_encoder.onnx"
    assert v["activation_quantization"] == "static"
    assert not (models / "c" / "text_encoder.int8.onnx").exists()


def test_smoothquant_rewrite_is_exact_in_float(exported, kermany_dir):
    """quantize_smooth.smooth moves scale between LayerNorm/v_proj and the next MatMul: the float graph computes the
    same function (Xiao et al. 2023 eq. 4) up to float rounding, on real images."""
    import numpy as np

    from cxr_export.images import preprocess_file
    from cxr_export.quantize_smooth import smooth

    entry = mf.load(exported)["models"][0]
    imgs = sorted((kermany_dir / "train" / "PNEUMONIA").iterdir())[:4] + sorted((kermany_dir / "test" / "NORMAL").iterdir())[:2]
    x = np.stack([preprocess_file(p, entry["preprocessing"]) for p in imgs])
    dst = exported / "smoothed.onnx"
    assert smooth(exported / "q" / "model.onnx", dst, x[:4], alpha=0.5) > 0
    ref = run_onnx(exported / "q" / "model.onnx", {"pixel_values": x[4:]})
    got = run_onnx(dst, {"pixel_values": x[4:]})
    for k in ("logits", "embedding"):
        assert np.abs(ref[k] - got[k]).max() < 1e-4 * max(1.0, float(np.abs(ref[k]).max()))


def test_a_unet_is_quantized_at_its_own_latent_size(tmp_path):
    """The UNet's skip Concats need latents divisible by its down-sampling: the parity feeds take the entry's
    config.latent_size (sample_feeds' default 2x2 failed in up_blocks.1/Concat). The shipped cxr-ldm-lcm, fp16."""
    import json
    import shutil
    from pathlib import Path

    src = Path(__file__).resolve().parents[2] / "public" / "models"
    entry = next((e for e in json.loads((src / "manifest.json").read_text())["models"] if e["id"] == "cxr-ldm-lcm"),
                 None)
    if entry is None:
        pytest.fail("public/models has no cxr-ldm-lcm")
    entry["variants"] = {"fp32": entry["variants"]["fp32"]}
    models = tmp_path / "m"
    for f in entry["variants"]["fp32"]["files"]:
        (models / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src / f["path"], models / f["path"])
    mf.save(models, {"models": [entry]})
    v = quantize(models, "cxr-ldm-lcm", "fp16")
    assert {f["path"] for f in v["files"]} >= {"cxr-ldm-lcm/unet.fp16.onnx", "cxr-ldm-lcm/vae_decoder.fp16.onnx"}
    assert v["parity"]["max_abs_diff"] < 0.05
