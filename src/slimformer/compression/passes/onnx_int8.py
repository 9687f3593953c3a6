"""Dynamic int8 with ORTQuantizer: weights int8, activations quantized on the fly, the
instruction-set preset chosen from this CPU's flags. `int8-float-head` keeps the classification
head (pooler and classifier: 2% of a small student's products) in float, where int8's error
reaches the logits, and so the out-of-scope score, undamped."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimformer.compression.passes.base import Pass, PassContext

logger = logging.getLogger(__name__)


@dataclass
class Int8Config:
    preset: str = "auto"  # auto (from the CPU flags), avx512_vnni, avx512, avx2, arm64
    per_channel: bool = True
    float_head: bool = False  # the head's matrix products stay float (spelled int8-float-head)

    def __post_init__(self) -> None:
        from slimformer.compression.onnx.quantize import choose_preset

        choose_preset(self.preset)  # an unknown preset, or one this CPU lacks, fails here

    @classmethod
    def from_settings(cls, settings: Any, spelled: str) -> Int8Config:
        return cls(preset=getattr(settings, "preset", "auto"),
                   per_channel=getattr(settings, "per_channel", True),
                   float_head=spelled == FLOAT_HEAD)

    @property
    def label(self) -> str:
        return FLOAT_HEAD if self.float_head else "int8"


FLOAT_HEAD = "int8-float-head"


def run(source: Path, target: Path, config: Int8Config, context: PassContext) -> None:
    from slimformer.compression.onnx.quantize import quantize_dynamic

    settings = quantize_dynamic(source, target, config.preset, config.per_channel,
                                context.overwrite, float_head=config.float_head)
    logger.info("%s: preset %s", target.name, settings["preset"])


PASS = Pass(
    name="int8", config=Int8Config, takes="onnx", makes="onnx", step="onnx-quantize-dynamic",
    title="Dynamic int8 quantization (ONNX Runtime, ORTQuantizer)",
    phrase="quantized to int8 by ONNX Runtime (dynamic)", run=run,
    tags=("quantization", "int8", "onnx", "onnxruntime"), quantizes=True,
    spellings=(FLOAT_HEAD,))
