"""What a graph holds: fused and integer operators, and the files beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

# Operators that ORTOptimizer's fusions produce (what "the graph got fused" means).
FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization",
             "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "LayerNormalization",
             "BiasGelu", "FastGelu", "Gelu", "BiasSoftmax", "FusedMatMul", "QAttention")


# Operators that do integer arithmetic in a quantized graph.
INTEGER_OPS = ("MatMulInteger", "QLinearMatMul", "QAttention", "DynamicQuantizeLinear",
               "QuantizeLinear", "DequantizeLinear", "QLinearAdd", "ConvInteger", "QGemm",
               "DynamicQuantizeMatMul")


def fused_op_counts(counts: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in counts.items() if op in FUSED_OPS}


def integer_op_counts(counts: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in counts.items() if op in INTEGER_OPS}


def copy_side_files(source: Path, target: Path, overwrite: bool = True) -> None:
    """Config, tokenizer and the like: everything but the graph and the provenance record."""
    for path in source.iterdir():
        if path.is_file() and path.suffix not in (".onnx", ".onnx_data") \
                and path.name != "slimformer.json" \
                and (overwrite or not (target / path.name).exists()):
            shutil.copy2(path, target / path.name)
