"""The tail of the encoder on the one position the classifier reads.

A sequence classifier reads one position of the encoder's last hidden state: the pooler or
pre-classifier takes `hidden[:, 0]` (the [CLS] token). Everything between the last attention
and that read works position by position (the attention output's projection, the residual
adds and layer norms, the feed-forward block), so it may as well run on position 0 alone:
the logits are the same, and the last layer's matrix products shrink from the query's length
to one row. On a 4-layer MiniLM student that is a fifth of the encoder's products.

`narrow_tail` finds that stretch by walking back from the read through operators that act on
each position alone, and puts a Slice (position 0, keeping the axis) on every tensor that
enters it. A node joins only if every consumer of its outputs has joined, so a tensor that
attention also reads (the residual stream) is sliced where it enters, not where it is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from onnx import ModelProto, NodeProto, helper, numpy_helper

from slimformer.errors import fail

# Operators that compute each position from that position alone, given the checks in
# `position_wise` (constant weights for MatMul, the last axis for normalizations, and
# constants that do not vary along the sequence).
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Erf", "Tanh", "Relu", "Cast",
               "Gelu", "FastGelu", "BiasGelu", "QuickGelu", "Sigmoid")
NORMALIZATIONS = ("LayerNormalization", "SkipLayerNormalization",
                  "SimplifiedLayerNormalization", "SkipSimplifiedLayerNormalization")
SLICE_NAMES = ("cls_tail_start", "cls_tail_end", "cls_tail_axis")


@dataclass
class Tail:
    """What narrow_tail changed: the nodes now run on one position, and where it sliced."""

    nodes: list[str]  # their names (their types where unnamed)
    matmuls: int
    sliced: list[str]


def constant_values(model: ModelProto) -> dict[str, np.ndarray]:
    """Initializers, Constant nodes' outputs and Identity copies of either, by name (the
    exporter shares equal weights through Identity nodes)."""
    values = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


def attribute(node: NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def head_read(model: ModelProto, constants: dict[str, np.ndarray]) -> NodeProto | None:
    """The Gather that reads position 0 of a hidden state (axis 1, scalar index 0)."""
    reads = [node for node in model.graph.node
             if node.op_type == "Gather" and attribute(node, "axis", 0) == 1
             and node.input[1] in constants and constants[node.input[1]].shape == ()
             and int(constants[node.input[1]]) == 0]
    return reads[0] if len(reads) == 1 else None


def same_at_every_position(value: np.ndarray) -> bool:
    """A constant that broadcasts the same along the sequence axis (rank <= 1, or every
    axis but the last of size 1)."""
    return value.ndim <= 1 or all(size == 1 for size in value.shape[:-1])


def position_wise(node: NodeProto, constants: dict[str, np.ndarray]) -> bool:
    """Whether the node computes each position from that position alone."""
    op = node.op_type
    if op == "MatMul":  # x @ W with a constant W; x @ y of two activations mixes positions
        return node.input[1] in constants and constants[node.input[1]].ndim == 2
    if op in NORMALIZATIONS:
        return attribute(node, "axis", -1) == -1
    if op == "ReduceMean":  # a decomposed layer norm's mean, over the hidden axis only
        axes = attribute(node, "axes") or (
            constants[node.input[1]].tolist() if len(node.input) > 1 else None)
        return axes == [-1] and attribute(node, "keepdims", 1) == 1
    if op in ELEMENTWISE:
        return all(same_at_every_position(constants[name]) for name in node.input
                   if name in constants)
    return False


def tail_nodes(model: ModelProto, read: NodeProto,
               constants: dict[str, np.ndarray]) -> list[NodeProto]:
    """The nodes feeding `read` that may run on position 0 alone: position-wise, no graph
    output among their outputs, read by something, and every reader already in (walked
    backwards in the graph's topological order)."""
    outputs = {out.name for out in model.graph.output}
    # by position in the graph: node names are optional in ONNX, and protobuf hands out a
    # new Python object for a node on each access, so id() does not identify one
    nodes = list(model.graph.node)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    read_at = next(i for i, node in enumerate(nodes) if node == read)
    joined = {read_at}
    for index in range(read_at - 1, -1, -1):
        node = nodes[index]
        used = [consumers.get(out, []) for out in node.output if out]
        # an output nothing reads (a fused norm's optional sum or statistics) does not hold
        # a node back; one that something outside the tail reads does
        if position_wise(node, constants) and not outputs & set(node.output) \
                and any(used) and all(c in joined for users in used for c in users):
            joined.add(index)
    return [nodes[i] for i in sorted(joined - {read_at})]


def narrow_tail(model: ModelProto, sequence_axis_of: dict[str, Any]) -> Tail:
    """Run the stretch between the last attention and the classifier's read of position 0 on
    that position alone (in place). `sequence_axis_of` maps a tensor name to its shape's
    axis 1 and `sequence_axis_of["input_ids"]` is the query length: every tensor sliced must
    have that length on axis 1, or the graph is left as it was and this fails."""
    graph = model.graph
    if any(node.op_type == "Slice" and node.input[1:4] == list(SLICE_NAMES)
           for node in graph.node):
        fail("this graph's tail already runs on position 0 alone (cls was applied before)")
    constants = constant_values(model)
    read = head_read(model, constants)
    if read is None:
        fail("no classifier read of position 0 (one Gather on axis 1 at index 0) in the "
             "graph: cls narrows only heads that read the first token")
    nodes = tail_nodes(model, read, constants)
    made = {out for node in nodes for out in node.output}
    entering = list(dict.fromkeys(name for node in nodes for name in node.input
                                  if name and name not in made and name not in constants))
    matmuls = sum(node.op_type == "MatMul" for node in nodes)
    if not matmuls:
        fail("nothing to narrow: no matrix product between the last attention and the "
             "classifier's read of position 0")
    length = sequence_axis_of.get("input_ids")
    wrong = [name for name in entering if length is None or sequence_axis_of.get(name) != length]
    if wrong:
        fail(f"cannot narrow the tail: {wrong[0]} does not run along the query's positions "
             "on axis 1")
    slice_into(model, nodes, entering)
    return Tail([node.name or node.op_type for node in nodes], matmuls, entering)


def slice_into(model: ModelProto, nodes: list[NodeProto], entering: list[str]) -> None:
    """A Slice [0:1] on axis 1 of each entering tensor, placed after its producer, with the
    tail's nodes reading the slices. Stale shapes of the narrowed tensors are dropped."""
    graph = model.graph
    for name, value in zip(SLICE_NAMES, (0, 1, 1)):
        graph.initializer.append(numpy_helper.from_array(np.array([value], np.int64), name))
    sliced = {name: f"{name}/cls_tail" for name in entering}
    for node in nodes:
        for i, name in enumerate(node.input):
            if name in sliced:
                node.input[i] = sliced[name]
    slices = {name: helper.make_node("Slice", [name, *SLICE_NAMES], [sliced[name]],
                                     name=f"ClsTailSlice_{i}")
              for i, name in enumerate(entering)}
    order = [slices.pop(name) for name in entering if name in {i.name for i in graph.input}]
    for node in graph.node:
        order.append(node)
        order += [slices.pop(out) for out in node.output if out in slices]
    del graph.node[:]
    graph.node.extend(order)
    narrowed = {out for node in nodes for out in node.output}
    keep = [info for info in graph.value_info if info.name not in narrowed]
    del graph.value_info[:]
    graph.value_info.extend(keep)


def sequence_axes(model: ModelProto) -> dict[str, Any]:
    """Axis 1 of every tensor's shape (a symbol or a size), by ONNX Runtime's symbolic shape
    inference, which knows its fused operators."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    try:
        typed = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception as err:  # its failures are asserts and KeyErrors without context
        fail(f"cannot infer tensor shapes to narrow the tail: {err!r:.200}")
    axes = {}
    for info in [*typed.graph.input, *typed.graph.value_info, *typed.graph.output]:
        dims = info.type.tensor_type.shape.dim
        if len(dims) >= 2:
            axes[info.name] = dims[1].dim_param or dims[1].dim_value or None
    return axes
