"""ONNX variants through Optimum: export, graph optimization, int8 quantization.

Every function reads a model folder and writes a new variant folder holding `model.onnx`,
`config.json`, the tokenizer and `slimformer.json`, so `pipeline()`, the ONNX Runtime variant
and the lean predictor all load it by its folder alone. Nothing heavy is imported until a
function runs.
"""

from slimformer.compression.onnx.export import export_model_onnx, export_onnx
from slimformer.compression.onnx.graph import fused_op_counts, integer_op_counts
from slimformer.compression.onnx.optimize import LEVELS, optimize_onnx
from slimformer.compression.onnx.quantize import (
    CALIBRATION_METHODS,
    choose_preset,
    quantize_dynamic,
    quantize_static,
)
from slimformer.models.onnx_files import ONNX_NAME, op_counts

__all__ = ["CALIBRATION_METHODS", "LEVELS", "ONNX_NAME", "choose_preset", "export_model_onnx",
           "export_onnx", "fused_op_counts", "integer_op_counts", "op_counts", "optimize_onnx",
           "quantize_dynamic", "quantize_static"]
