"""4-bit embeddings: the word-embedding table (the largest Gather on a constant) quantized to
4 bits with ONNX Runtime's MatMulNBitsQuantizer, and looked up by plain operators
(compression/onnx/nibble_lookup.py) instead of its slow GatherBlockQuantized kernel.

The word-embedding table is most of a small student's weights (30,522 x 384 in MiniLM's
vocabulary), and int8 keeps it at 8 bits. The position and token-type tables stay for int8:
they are 2% of the bytes, and each GatherBlockQuantized costs about 55 us per query on 2 cores
where int8's Gather and DequantizeLinear cost 14 (measured, docs/distillation.md).

Chain it after graph fusion and before int8: `onnx > O2 > emb4 > int8`. The lookup unpacks its
4-bit table with operators on constants, which ONNX Runtime folds when it loads the graph;
fusion saves a graph ONNX Runtime has folded, so after emb4 it would write the unpacked table
back into the file. By default each row has one scale (the fewest operators at run time);
`emb4-b32` (b16 to b256) spells blocks of that many values sharing one.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from onnx import TensorProto

from slimformer.compression.passes.base import Pass, PassContext
from slimformer.compression.passes.onnx_optimize import EMB_SPELLINGS
from slimformer.errors import fail

STEP = "onnx-embeddings-4bit"
BLOCK_SIZES = (16, 32, 64, 128, 256)


@dataclass
class Emb4Config:
    # values sharing one scale, along the hidden dimension; None: the whole row
    block_size: int | None = None

    def __post_init__(self) -> None:
        if self.block_size is not None and self.block_size not in BLOCK_SIZES:
            fail(f"4-bit embedding block size must be 16, 32, 64, 128 or 256, got "
                 f"{self.block_size}")

    @classmethod
    def from_settings(cls, settings: Any, spelled: str) -> Emb4Config:
        """emb4 (a scale per row) or emb4-bN as spelled in a chain."""
        return cls(block_size=int(spelled[len("emb4-b"):])) if spelled != "emb4" else cls()

    @property
    def label(self) -> str:
        """Its part of a folder's name: emb4, or emb4-b32 for blocks."""
        return "emb4" if self.block_size is None else f"emb4-b{self.block_size}"

    def quantizer_block(self, width: int) -> int:
        """The quantizer's block size: a power of two at least the row's width for one scale
        per row (its blocks may be wider than the row)."""
        return self.block_size or max(16, 1 << (width - 1).bit_length())


def run(source: Path, target: Path, config: Emb4Config, context: PassContext) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    from slimformer.compression.onnx.graph import copy_side_files
    from slimformer.compression.onnx.nibble_lookup import as_plain_ops
    from slimformer.files import staged_folder
    from slimformer.models.onnx_files import ONNX_NAME, load_onnx_model, onnx_file
    from slimformer.provenance import write_provenance

    model = load_onnx_model(onnx_file(source))  # a damaged graph: one line naming the file
    word = word_table(model)
    if word is None:
        fail(f"{source} has no embedding table to quantize (no Gather on a constant): is it "
             "already quantized, or did fusion fold it into EmbedLayerNormalization? Chain "
             "emb4 right after the ONNX export or its fusion, before int8")
    # symmetric: no zero points, a scale per block only (what the plain lookup reads)
    options = {"block_size": config.quantizer_block(word.dims[1]), "is_symmetric": True,
               "op_types_to_quantize": ("Gather",), "quant_axes": (("Gather", 1),)}
    quantizer = MatMulNBitsQuantizer(model, algo_config=DefaultWeightOnlyQuantConfig(
        **options), nodes_to_exclude=smaller_tables(model), **options)
    noisy = logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")
    level, noisy.level = noisy.level, logging.WARNING  # it logs every node it looks at
    try:
        quantizer.process()
    finally:
        noisy.setLevel(level)
    tables = as_plain_ops(quantizer.model.model)
    if not tables:
        fail(f"{source}: ONNX Runtime's quantizer left its word-embedding table "
             f"{word.name!r} at full precision; nothing was made 4-bit")
    with staged_folder(target, context.overwrite, step=STEP) as stage:
        quantizer.model.save_model_to_file(str(stage / ONNX_NAME), use_external_data_format=False)
        copy_side_files(source, stage, overwrite=False)
        write_provenance(stage, STEP, {"bits": 4, "block_size": config.block_size or "row",
                                       "symmetric": True, "tables": tables,
                                       "lookup": "plain operators"},
                         source=source)


def table_gathers(model: Any) -> list[tuple[int, str, Any]]:
    """(size, node name, table) of each Gather on a 2-D float constant, largest first."""
    tables = {init.name: init for init in model.graph.initializer
              if len(init.dims) == 2 and init.data_type == TensorProto.FLOAT}
    return sorted(((math.prod(tables[n.input[0]].dims), n.name, tables[n.input[0]])
                   for n in model.graph.node if n.op_type == "Gather" and n.input
                   and n.input[0] in tables), key=lambda found: found[:2], reverse=True)


def word_table(model: Any) -> Any:
    """The largest table a Gather reads (the word embeddings), or None."""
    found = table_gathers(model)
    return found[0][2] if found else None


def smaller_tables(model: Any) -> list[str]:
    """The Gathers on a constant other than the one on the largest table."""
    return [name for _, name, _ in table_gathers(model)[1:]]


PASS = Pass(
    name="emb4", config=Emb4Config, takes="onnx", makes="onnx", step=STEP,
    title="4-bit embeddings (ONNX Runtime's block quantizer)",
    phrase="its embeddings quantized to 4 bits by ONNX Runtime", run=run,
    tags=("quantization", "4-bit"),
    # the embedding fusion (O2-emb) folds away the table it quantizes
    not_after=("int8", "int8-static", *EMB_SPELLINGS),
    spellings=tuple(f"emb4-b{size}" for size in BLOCK_SIZES))
