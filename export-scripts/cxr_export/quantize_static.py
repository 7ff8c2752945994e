"""Static int8 (QDQ) quantization of a ViT graph's weight MatMuls (onnxruntime.quantization.quantize_static), the one
implementation `cxr-export quantize --int8-method qdq` ships and `cxr-export quantize-search` compares settings of.
A leaf module (no model or data imports), so quantize.py can use it without an import cycle through the evaluation
code of quantize_search.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class ArrayCalibration:
    """CalibrationDataReader over preprocessed pixel_values [N,3,H,W] in batches."""

    def __init__(self, x: np.ndarray, batch: int = 16):
        self.batches = iter([{"pixel_values": x[i:i + batch]} for i in range(0, len(x), batch)])

    def get_next(self):
        return next(self.batches, None)


def quantize_static_graph(src: Path, dst: Path, calib_x: np.ndarray, *, const_b_only: bool = True,
                          per_channel: bool = True, method: str = "MinMax", act_symmetric: bool = False,
                          act_type: str = "s8", percentile: float = 99.999, excl: list[str] | None = None,
                          n_calib: int | None = None, smooth_alpha: float | None = None) -> None:
    """Static int8 QDQ of the MatMuls of src (onnxruntime.quantization.quantize_static), activation ranges from
    calib_x [N,3,H,W] (the first n_calib images). const_b_only: only MatMuls with a weight (initializer) operand, so
    the attention products QK^T and softmax(.)V stay float32; excl: node-name substrings left float32.
    Softmax, LayerNormalization, the Gemm heads and the patch-embedding Conv are never quantized (not MatMul).
    smooth_alpha: SmoothQuant the float graph first (quantize_smooth.smooth, same calibration images)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    x = calib_x[:n_calib] if n_calib else calib_x
    if smooth_alpha is not None:
        from .quantize_smooth import smooth

        smoothed = dst.with_name(dst.stem + ".smoothed.onnx")
        smooth(src, smoothed, x, smooth_alpha)
        src = smoothed
    model = onnx.load(str(src))
    inits = {i.name for i in model.graph.initializer}
    mm = [n for n in model.graph.node if n.op_type == "MatMul"]
    exclude = [n.name for n in mm if any(s in n.name for s in (excl or []))]
    if const_b_only:
        # quantize_static's MatMulConstBOnly is not honoured in QDQ format (onnxruntime 1.32): it would quantize the
        # attention products too, softmax probabilities and QK^T scores included (steps of ~1.0 before the softmax)
        exclude += [n.name for n in mm if n.input[1] not in inits and n.name not in exclude]
    extra = {"MatMulConstBOnly": const_b_only, "ActivationSymmetric": act_symmetric}
    if method == "Percentile":
        extra["CalibPercentile"] = percentile
    try:
        quantize_static(str(src), str(dst), ArrayCalibration(x), quant_format=QuantFormat.QDQ, per_channel=per_channel,
                        weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8 if act_type == "u8" else QuantType.QInt8,
                        op_types_to_quantize=["MatMul"], nodes_to_exclude=exclude,
                        calibrate_method=getattr(CalibrationMethod, method), extra_options=extra)
    finally:
        if smooth_alpha is not None:
            Path(src).unlink(missing_ok=True)  # the smoothed float intermediate
