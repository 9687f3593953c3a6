"""Graph optimization (operator fusion) with ORTOptimizer, at level O1-O3 (O4: GPU fp16).

In a chain it is `opt` (the run's --optimization_level) or the level itself: `onnx > O2`.
`O2-emb` (or `opt-emb`) also fuses the embeddings into one EmbedLayerNormalization, which
Optimum leaves out by default: the word, position and token-type lookups, their sum, the
LayerNorm and the attention mask's reduction become one operator, and int8 quantizes its
tables as QEmbedLayerNormalization. It folds away the Gather that `emb4` quantizes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slimformer.compression.onnx.optimize import LEVELS
from slimformer.compression.passes.base import Pass, PassContext
from slimformer.errors import fail

EMB = "-emb"
# how a chain asks for the embedding fusion: the run's level (opt-emb) or a level's own
EMB_SPELLINGS = tuple(name + EMB for name in ("opt", *LEVELS))
logger = logging.getLogger(__name__)


@dataclass
class OptimizeConfig:
    optimization_level: str = "O2"
    fuse_embeddings: bool = False  # EmbedLayerNormalization (spelled O2-emb, opt-emb)

    def __post_init__(self) -> None:
        if self.optimization_level not in LEVELS:
            fail(f"unknown optimization level {self.optimization_level!r}; choose one of "
                 f"{', '.join(LEVELS)}")
        if not isinstance(self.fuse_embeddings, bool):
            fail(f"fuse_embeddings must be true or false, got {self.fuse_embeddings!r:.40}")

    @classmethod
    def from_settings(cls, settings: Any, spelled: str) -> OptimizeConfig:
        """opt (the run's level), O1-O4, or either with -emb, as spelled in a chain."""
        level = spelled.removesuffix(EMB)
        return cls(level if level in LEVELS else getattr(settings, "optimization_level", "O2"),
                   fuse_embeddings=spelled.endswith(EMB))

    @property
    def label(self) -> str:
        """Its part of a folder's name: the level, O2-emb with the embeddings fused."""
        return self.optimization_level + (EMB if self.fuse_embeddings else "")


def run(source: Path, target: Path, config: OptimizeConfig, context: PassContext) -> None:
    from slimformer.compression.onnx.optimize import optimize_onnx

    fused = optimize_onnx(source, target, config.optimization_level, context.overwrite,
                          fuse_embeddings=config.fuse_embeddings)
    logger.info("%s: fused %s", target.name, fused)


PASS = Pass(
    name="opt", config=OptimizeConfig, takes="onnx", makes="onnx", step="onnx-optimize",
    title="Graph optimization (ONNX Runtime, ORTOptimizer)",
    phrase="graph-optimized by ONNX Runtime", run=run, tags=("onnx", "onnxruntime"),
    spellings=(*LEVELS, *EMB_SPELLINGS),
    # ONNX Runtime's fusion saves a constant-folded graph: after emb4 it would write the
    # 4-bit table back unpacked (compression/onnx/nibble_lookup.py)
    not_after=("emb4",))
