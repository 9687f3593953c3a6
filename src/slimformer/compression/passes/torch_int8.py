"""PyTorch dynamic int8: every nn.Linear's weights int8, activations quantized on the fly."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slimformer.compression.passes.base import Pass, PassContext


@dataclass
class TorchInt8Config:
    per_channel: bool = True  # one scale per output row instead of one per matrix


def run(source: Path, target: Path, config: TorchInt8Config, context: PassContext) -> None:
    from slimformer.compression.torch_int8 import quantize_torch_folder

    quantize_torch_folder(source, target, config.per_channel, context.overwrite)


PASS = Pass(
    name="torch-int8", config=TorchInt8Config, takes="pytorch", makes="pytorch-int8",
    step="quantize-dynamic-torch", title="Dynamic int8 quantization (PyTorch)",
    phrase="quantized to int8 (PyTorch dynamic quantization)", run=run,
    tags=("quantization", "int8"), quantizes=True)
