"""Static int8 with ORTQuantizer: activation ranges calibrated beforehand on training rows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slimformer.compression.passes.base import Pass, PassContext
from slimformer.errors import fail


@dataclass
class StaticInt8Config:
    calibration_method: str = "minmax"  # minmax, entropy or percentiles
    calibration_rows: int = 300
    calibration_max_length: int = 64  # fixed padded length of the calibration rows
    preset: str = "auto"
    per_channel: bool = True

    def __post_init__(self) -> None:
        from slimformer.compression.onnx.quantize import CALIBRATION_METHODS, choose_preset

        if self.calibration_method not in CALIBRATION_METHODS:
            fail(f"unknown calibration method {self.calibration_method!r}; choose one of "
                 f"{', '.join(CALIBRATION_METHODS)}")
        choose_preset(self.preset)


def run(source: Path, target: Path, config: StaticInt8Config, context: PassContext) -> None:
    from slimformer.compression.onnx.quantize import quantize_static

    quantize_static(source, target, context.texts[:config.calibration_rows],
                    config.calibration_method, config.calibration_max_length, config.preset,
                    config.per_channel, overwrite=context.overwrite)


PASS = Pass(
    name="int8-static", config=StaticInt8Config, takes="onnx", makes="onnx",
    step="onnx-quantize-static",
    title="Static int8 quantization (ONNX Runtime, ORTQuantizer, calibrated)",
    phrase="quantized to int8 by ONNX Runtime (static, calibrated)", run=run,
    tags=("quantization", "int8", "onnx", "onnxruntime"), quantizes=True)
