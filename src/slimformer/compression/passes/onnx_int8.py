"""Dynamic int8 with ORTQuantizer: weights int8, activations quantized on the fly, the
instruction-set preset chosen from this CPU's flags."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from slimformer.compression.passes.base import Pass, PassContext

logger = logging.getLogger(__name__)


@dataclass
class Int8Config:
    preset: str = "auto"  # auto (from the CPU flags), avx512_vnni, avx512, avx2, arm64
    per_channel: bool = True

    def __post_init__(self) -> None:
        from slimformer.compression.onnx.quantize import choose_preset

        choose_preset(self.preset)  # an unknown preset, or one this CPU lacks, fails here


def run(source: Path, target: Path, config: Int8Config, context: PassContext) -> None:
    from slimformer.compression.onnx.quantize import quantize_dynamic

    settings = quantize_dynamic(source, target, config.preset, config.per_channel,
                                context.overwrite)
    logger.info("%s: preset %s", target.name, settings["preset"])


PASS = Pass(
    name="int8", config=Int8Config, takes="onnx", makes="onnx", step="onnx-quantize-dynamic",
    title="Dynamic int8 quantization (ONNX Runtime, ORTQuantizer)",
    phrase="quantized to int8 by ONNX Runtime (dynamic)", run=run,
    tags=("quantization", "int8", "onnx", "onnxruntime"), quantizes=True)
