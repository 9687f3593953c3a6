"""A 4-bit table lookup in standard ONNX operators, in place of GatherBlockQuantized.

ONNX Runtime's CPU GatherBlockQuantized does several integer divisions per output element: on
2 cores one lookup of a query's tokens costs about 55 us, where int8's Gather and
DequantizeLinear cost about 14 (docs/distillation.md). The same lookup in plain operators
runs as fast as int8's:

    bytes  = Gather(packed, ids)                    uint8, two 4-bit values per byte
    values = Cast(Gather(nibbles, Cast(bytes)))     a 256 x 2 table: each byte's two values
    scales = Cast(Gather(Gather(units, ids), block_of_column)) * unit

Every constant is an integer, so the passes that come after it (graph fusion, int8, which
quantize float tables) leave it alone. The scales are fixed-point int32 with one shared unit,
a power of two: 2^31 steps below the largest scale.
"""

from __future__ import annotations

import numpy as np
from onnx import ModelProto, NodeProto, TensorProto, helper, numpy_helper


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


def lookup_nodes(node: NodeProto, values: np.ndarray, scales: np.ndarray,
                 block: int) -> tuple[list[NodeProto], list[TensorProto]]:
    """The operators and constants that compute `node`'s output from its ids."""
    ids, out = node.input[1], node.output[0]
    width = values.shape[1]
    packed = ((values[:, 0::2] + 8) | ((values[:, 1::2] + 8) << 4)).astype(np.uint8)
    nibbles = np.array([[(b & 15) - 8, (b >> 4) - 8] for b in range(256)], dtype=np.int8)
    units, unit = fixed_point(scales)

    def name(part: str) -> str:
        return f"{out}_{part}"

    constants = [numpy_helper.from_array(packed, name("packed")),
                 numpy_helper.from_array(nibbles, name("nibbles")),
                 numpy_helper.from_array(units, name("units")),
                 numpy_helper.from_array((np.arange(width) // block).astype(np.int64),
                                         name("block_of_column")),
                 numpy_helper.from_array(np.array([0, 0, width], np.int64), name("shape")),
                 numpy_helper.from_array(np.array(unit, np.float32), name("unit"))]
    nodes = [
        helper.make_node("Gather", [name("packed"), ids], [name("bytes")], axis=0),
        helper.make_node("Cast", [name("bytes")], [name("byte_ids")], to=TensorProto.INT64),
        helper.make_node("Gather", [name("nibbles"), name("byte_ids")], [name("pairs")], axis=0),
        helper.make_node("Reshape", [name("pairs"), name("shape")], [name("ints")]),
        helper.make_node("Cast", [name("ints")], [name("values")], to=TensorProto.FLOAT),
        helper.make_node("Gather", [name("units"), ids], [name("row_units")], axis=0),
        helper.make_node("Gather", [name("row_units"), name("block_of_column")],
                         [name("column_units")], axis=-1),
        helper.make_node("Cast", [name("column_units")], [name("column_units_f")],
                         to=TensorProto.FLOAT),
        helper.make_node("Mul", [name("column_units_f"), name("unit")], [name("scales")]),
        helper.make_node("Mul", [name("values"), name("scales")], [out]),
    ]
    return nodes, constants


def as_plain_ops(model: ModelProto) -> int:
    """Replace each symmetric 4-bit GatherBlockQuantized on a 2-D table, gathered along rows
    from 2-D ids, by the plain lookup; returns how many were replaced."""
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
    return replaced
