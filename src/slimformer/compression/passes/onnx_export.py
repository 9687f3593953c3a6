"""Export to ONNX (FP32) with Optimum; a pruned model's own per-layer widths included."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slimformer.compression.passes.base import Pass, PassContext


@dataclass
class ExportConfig:
    opset: int | None = None  # Optimum's default for the architecture


def run(source: Path, target: Path, config: ExportConfig, context: PassContext) -> None:
    from slimformer.compression.onnx.export import export_onnx
    from slimformer.compression.pruning.compact import (
        export_pruned_onnx,
        is_pruned_folder,
        load_pruned,
    )

    if is_pruned_folder(source):  # from_pretrained cannot rebuild per-layer FFN widths
        from slimformer.models.loading import load_folder_tokenizer

        export_pruned_onnx(load_pruned(source), load_folder_tokenizer(source), target,
                           source=source, opset=config.opset, overwrite=context.overwrite)
    else:
        export_onnx(source, target, config.opset, context.overwrite)


PASS = Pass(
    name="onnx", config=ExportConfig, takes="pytorch", makes="onnx", step="onnx-export",
    title="Export to ONNX", phrase="exported to ONNX", run=run, tags=("onnx", "onnxruntime"))
