"""Graph optimization (operator fusion) with ORTOptimizer."""

from __future__ import annotations

from pathlib import Path

from slimformer.compression.onnx.graph import copy_side_files, fused_op_counts
from slimformer.errors import fail
from slimformer.files import staged_folder
from slimformer.models.onnx_files import (
    ONNX_NAME,
    load_onnx_model,
    onnx_file,
    op_counts,
    read_config,
)
from slimformer.provenance import write_provenance

LEVELS = ("O1", "O2", "O3", "O4")


def has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def optimize_onnx(source: str | Path, output: str | Path, level: str = "O2",
                  overwrite: bool = False, fuse_embeddings: bool = False) -> dict[str, int]:
    """ORTOptimizer at level O1-O3 (O4 = O3 + fp16, GPU only); returns the fused op counts.
    fuse_embeddings: also EmbedLayerNormalization, which Optimum's levels leave out."""
    from optimum.onnxruntime import AutoOptimizationConfig, ORTOptimizer

    source = Path(source)
    if level not in LEVELS:
        fail(f"unknown optimization level {level!r}; choose one of {', '.join(LEVELS)}")
    if level == "O4" and not has_cuda():
        fail("optimization level O4 (fp16) needs a CUDA GPU; on CPU use O1, O2 or O3")
    path = onnx_file(source)
    load_onnx_model(path)
    model_type = read_config(source).get("model_type", "unknown")
    with staged_folder(output, overwrite, step="onnx-optimize") as stage:
        try:
            optimizer = ORTOptimizer.from_pretrained(source, file_names=[path.name])
            config = AutoOptimizationConfig.with_optimization_level(
                level, for_gpu=(level == "O4"))
            config.disable_embed_layer_norm_fusion = not fuse_embeddings
            optimizer.optimize(config, stage)
        except (KeyError, NotImplementedError, ValueError) as err:
            fail(f"cannot fuse the graph of {source} (model type {model_type!r}) with "
                 f"ORTOptimizer: {str(err).splitlines()[0][:200]}")
        produced = next(stage.glob("*_optimized.onnx"))
        produced.rename(stage / ONNX_NAME)
        copy_side_files(source, stage, overwrite=False)
        fused = fused_op_counts(op_counts(stage / ONNX_NAME))
        # O1 is ONNX Runtime's basic level (constant folding, no transformer fusions).
        if level != "O1" and not any(op in fused for op in (
                "Attention", "MultiHeadAttention", "SkipLayerNormalization")):
            fail(f"ORTOptimizer fused nothing in {source} (model type {model_type!r}): "
                 "this architecture has no fusion patterns; use the plain export")
        write_provenance(stage, "onnx-optimize", {"level": level, "fused_ops": fused,
                                                  "fuse_embeddings": fuse_embeddings},
                         source=source)
    return fused
