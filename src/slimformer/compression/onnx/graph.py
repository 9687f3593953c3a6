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


# Operators between the encoder's last output and the logits in a classification head
# (pooler or pre-classifier, activation, classifier, the first token's selection).
HEAD_OPS = ("MatMul", "Gemm", "Add", "Tanh", "Relu", "Gelu", "Gather", "Squeeze", "Slice",
            "Reshape", "Flatten", "Identity", "Unsqueeze")


def head_matmuls(model) -> list[str]:
    """Names of the head's MatMul and Gemm nodes: those reached from the graph's outputs
    through head operators only (the walk stops at the encoder's last normalization). A Gemm
    also gives the name ONNX Runtime's quantizer calls it by once it has split it into a
    MatMul and an Add (NAME_MatMul)."""
    graph = model.graph
    producers = {out: node for node in graph.node for out in node.output}
    constants = {init.name for init in graph.initializer}
    found, seen, todo = [], set(), [out.name for out in graph.output]
    while todo:
        node = producers.get(todo.pop())
        if node is None or id(node) in seen or node.op_type not in HEAD_OPS:
            continue
        seen.add(id(node))
        if node.op_type in ("MatMul", "Gemm") and node.name:
            found += [node.name, f"{node.name}_MatMul"] if node.op_type == "Gemm" else [node.name]
        todo.extend(name for name in node.input if name and name not in constants)
    return sorted(found)


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
