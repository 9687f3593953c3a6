"""Graph optimization (operator fusion) with ORTOptimizer, at level O1-O3 (O4: GPU fp16).

In a chain it is `opt` (the run's --optimization_level) or the level itself: `onnx > O2`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimformer.compression.onnx.optimize import LEVELS
from slimformer.compression.passes.base import Pass, PassContext
from slimformer.errors import fail

logger = logging.getLogger(__name__)


@dataclass
class OptimizeConfig:
    optimization_level: str = "O2"

    def __post_init__(self) -> None:
        if self.optimization_level not in LEVELS:
            fail(f"unknown optimization level {self.optimization_level!r}; choose one of "
                 f"{', '.join(LEVELS)}")

    @classmethod
    def from_settings(cls, settings: Any, spelled: str) -> OptimizeConfig:
        return cls(spelled if spelled in LEVELS else
                   getattr(settings, "optimization_level", "O2"))

    @property
    def label(self) -> str:
        return self.optimization_level


def run(source: Path, target: Path, config: OptimizeConfig, context: PassContext) -> None:
    from slimformer.compression.onnx.optimize import optimize_onnx

    fused = optimize_onnx(source, target, config.optimization_level, context.overwrite)
    logger.info("%s: fused %s", target.name, fused)


PASS = Pass(
    name="opt", config=OptimizeConfig, takes="onnx", makes="onnx", step="onnx-optimize",
    title="Graph optimization (ONNX Runtime, ORTOptimizer)",
    phrase="graph-optimized by ONNX Runtime", run=run, tags=("onnx", "onnxruntime"),
    spellings=LEVELS,
    # ONNX Runtime's fusion saves a constant-folded graph: after emb4 it would write the
    # 4-bit table back unpacked (compression/onnx/nibble_lookup.py)
    not_after=("emb4",))
