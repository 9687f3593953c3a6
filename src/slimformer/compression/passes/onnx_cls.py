"""The encoder's tail on the [CLS] position alone (compression/onnx/cls_tail.py): after the
last attention, every operator works on each position by itself, and the classifier reads
position 0 only, so the attention output's projection, the last feed-forward block and their
layer norms run on one row instead of the query's length. The logits are unchanged.

Chain it after graph fusion and before int8: `onnx > O2 > cls > int8`. After int8 the tail's
activations are quantized on the fly per tensor, over all positions: narrowing a quantized
graph would change that range, so cls must come first (int8 then quantizes the one row with
its own range).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from slimformer.compression.passes.base import Pass, PassContext

logger = logging.getLogger(__name__)

STEP = "onnx-cls-tail"


@dataclass
class ClsConfig:
    """No settings: the stretch to narrow is found in the graph."""


def run(source: Path, target: Path, config: ClsConfig, context: PassContext) -> None:
    import onnx

    from slimformer.compression.onnx.cls_tail import narrow_tail, sequence_axes
    from slimformer.compression.onnx.graph import copy_side_files
    from slimformer.errors import SlimformerError, fail
    from slimformer.files import staged_folder
    from slimformer.models.onnx_files import ONNX_NAME, load_onnx_model, onnx_file
    from slimformer.provenance import write_provenance

    model = load_onnx_model(onnx_file(source))
    try:
        tail = narrow_tail(model, sequence_axes(model))
    except SlimformerError as err:
        fail(f"{source}: {err}")
    with staged_folder(target, context.overwrite, step=STEP) as stage:
        onnx.save(model, str(stage / ONNX_NAME))
        copy_side_files(source, stage, overwrite=False)
        write_provenance(stage, STEP, {"position": 0, "nodes": len(tail.nodes),
                                       "matmuls": tail.matmuls, "sliced": tail.sliced},
                         source=source)
    logger.info("%s: %d nodes (%d matrix products) now run on position 0 alone", target.name,
                len(tail.nodes), tail.matmuls)


PASS = Pass(
    name="cls", config=ClsConfig, takes="onnx", makes="onnx", step=STEP,
    title="The last layer on the [CLS] position alone (slimformer)",
    phrase="its last layer narrowed to the position the classifier reads", run=run,
    tags=("onnx",), not_after=("int8", "int8-static"))
