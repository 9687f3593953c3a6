"""A 4-bit table lookup in standard ONNX operators, in place of GatherBlockQuantized.

ONNX Runtime's CPU GatherBlockQuantized does several integer divisions per output element: on
2 cores one lookup of a query's tokens costs about 55 us, where int8's Gather and
DequantizeLinear cost about 14 (docs/distillation.md). At batch 1 each extra operator costs a
few microseconds whatever it does, so the lookup here runs as few as it can:

    table  = Sub(Cast(Concat(packed & 15, packed >> 4)), 8)      int8 rows x width, constant
    scales = Cast(units) * unit                                   float rows x blocks, constant
    out    = Cast(Gather(table, ids)) * Gather(scales, ids)       (a block's scale per column)

The file holds the packed bytes (two 4-bit values each, column j with column j + width/2) and
the scales as fixed-point int32 with one power-of-two unit. The first two lines depend on
constants only, so ONNX Runtime folds them when it loads the graph: at run time the lookup is
an int8 Gather, a Cast, the scales' Gather and a Mul, against int8's Gather and
DequantizeLinear. In memory the table is 8-bit, as int8's; on disk it is 4-bit.

Nothing that folds constants may run between this and the session that serves it, or the
file gets the unpacked table back: chain it after graph fusion (whose ONNX Runtime pass
saves a folded graph). The int8 pass after it leaves it alone: it quantizes Gathers of
float initializers only, and these Gathers read computed tensors.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper

# BitwiseAnd needs opset 18; the quantizer that made the INT4 table already raised it to 21
MIN_OPSET = 18


def int4_values(tensor: TensorProto) -> np.ndarray:
    """The signed 4-bit values of an INT4 initializer (two per byte, low nibble first)."""
    rows, width = tensor.dims
    raw = np.frombuffer(tensor.raw_data, dtype=np.uint8)
    values = np.stack([raw & 0x0F, raw >> 4], axis=1).reshape(-1)[: rows * width]
    values = values.astype(np.int16)
    return np.where(values >= 8, values - 16, values).reshape(rows, width)


def fixed_point(scales: np.ndarray) -> tuple[np.ndarray, float]:
    """int32 scales and their unit (scales ~ int32 * unit, to 2^-31 of the largest)."""
    top = float(np.abs(scales).max()) or 1.0
    unit = 2.0 ** (np.floor(np.log2(top)) - 30)
    return np.round(scales / unit).astype(np.int32), float(unit)


def packed_halves(values: np.ndarray) -> np.ndarray:
    """Values in [-8, 7] as bytes: column j (+8) in the low nibble, column j + half in the
    high one (a zero column pads an odd width)."""
    half = (values.shape[1] + 1) // 2
    offset = np.pad(values + 8, ((0, 0), (0, 2 * half - values.shape[1])), constant_values=8)
    return (offset[:, :half] | (offset[:, half:] << 4)).astype(np.uint8)


def lookup_nodes(node: NodeProto, values: np.ndarray, scales: np.ndarray,
                 block: int) -> tuple[list[NodeProto], list[TensorProto]]:
    """The operators and constants that compute `node`'s output from its ids."""
    ids, out = node.input[1], node.output[0]
    width = values.shape[1]
    units, unit = fixed_point(scales)

    def name(part: str) -> str:
        return f"{out}_{part}"

    constants = [numpy_helper.from_array(packed_halves(values), name("packed")),
                 numpy_helper.from_array(np.array(15, np.uint8), name("low_bits")),
                 numpy_helper.from_array(np.array(4, np.uint8), name("four")),
                 numpy_helper.from_array(np.array(8, np.int8), name("eight")),
                 numpy_helper.from_array(units, name("units")),
                 numpy_helper.from_array(np.array(unit, np.float32), name("unit"))]
    unpacked = name("nibbles")
    nodes = [  # constants only: folded by ONNX Runtime when it loads the graph
        helper.make_node("BitwiseAnd", [name("packed"), name("low_bits")], [name("low")]),
        helper.make_node("BitShift", [name("packed"), name("four")], [name("high")],
                         direction="RIGHT"),
        helper.make_node("Concat", [name("low"), name("high")], [unpacked], axis=1)]
    if width % 2:
        constants += [numpy_helper.from_array(np.array([0], np.int64), name("start")),
                      numpy_helper.from_array(np.array([width], np.int64), name("width")),
                      numpy_helper.from_array(np.array([1], np.int64), name("axis"))]
        nodes.append(helper.make_node("Slice", [unpacked, name("start"), name("width"),
                                                name("axis")], [name("columns")]))
        unpacked = name("columns")
    nodes += [
        helper.make_node("Cast", [unpacked], [name("offset")], to=TensorProto.INT8),
        helper.make_node("Sub", [name("offset"), name("eight")], [name("table")]),
        helper.make_node("Cast", [name("units")], [name("units_f")], to=TensorProto.FLOAT),
        helper.make_node("Mul", [name("units_f"), name("unit")], [name("scales")]),
        # at run time
        helper.make_node("Gather", [name("table"), ids], [name("rows")], axis=0),
        helper.make_node("Cast", [name("rows")], [name("values")], to=TensorProto.FLOAT),
        helper.make_node("Gather", [name("scales"), ids], [name("row_scales")], axis=0)]
    row_scales = name("row_scales")
    if scales.shape[1] > 1:  # a scale per block: spread along the row, column by column
        constants.append(numpy_helper.from_array(
            (np.arange(width) // block).astype(np.int64), name("block_of_column")))
        nodes.append(helper.make_node("Gather", [row_scales, name("block_of_column")],
                                      [name("column_scales")], axis=-1))
        row_scales = name("column_scales")
    nodes.append(helper.make_node("Mul", [name("values"), row_scales], [out]))
    return nodes, constants


def as_plain_ops(model: ModelProto) -> int:
    """Replace each symmetric 4-bit GatherBlockQuantized on a 2-D table, gathered along rows,
    by the plain lookup; returns how many were replaced."""
    graph = model.graph
    tables = {init.name: init for init in graph.initializer}
    replaced = 0
    for node in list(graph.node):
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if (node.op_type != "GatherBlockQuantized" or len(node.input) > 3
                or attrs.get("bits", 4) != 4 or attrs.get("gather_axis", 0) != 0
                or attrs.get("quantize_axis", 1) != 1 or node.input[0] not in tables
                or tables[node.input[0]].data_type != TensorProto.INT4):
            continue
        values = int4_values(tables[node.input[0]])
        scales = numpy_helper.to_array(tables[node.input[2]]).astype(np.float64)
        nodes, constants = lookup_nodes(node, values, scales, attrs["block_size"])
        position = list(graph.node).index(node)
        graph.node.remove(node)
        for offset, new in enumerate(nodes):
            graph.node.insert(position + offset, new)
        for used in node.input[0], node.input[2]:
            graph.initializer.remove(tables[used])
        graph.initializer.extend(constants)
        replaced += 1
    for opset in model.opset_import:
        if opset.domain in ("", "ai.onnx") and opset.version < MIN_OPSET:
            opset.version = MIN_OPSET
    return replaced
