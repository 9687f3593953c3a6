"""Variant kinds, one declaration each: the class that detects and loads a folder of the kind,
and how a model card presents it (its title, its Hub library, and the usage snippet of the
files once published: hub_cards/usage/<usage>.md).

Light to import: a kind's class is imported only when a folder of that kind is loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from slimformer.errors import fail


@dataclass(frozen=True)
class Kind:
    name: str
    runner: str  # "module:Class", a Variant with detect(folder) and load(folder, name, threads)
    title: str  # the card's summary names it so: "(ONNX Runtime)"
    library: str  # the card's library_name
    usage: str  # how its published files load (a snippet in hub_cards/usage/)
    detected: bool = True  # tried, in order, when a folder's kind is not given


# In detection order: a folder is the first kind whose class detects it.
DECLARED = (
    Kind("pytorch-int8", "slimformer.compression.torch_int8:TorchInt8Variant",
         "PyTorch, dynamic int8", "slimformer", "pytorch-int8"),
    Kind("onnx", "slimformer.serving.ort:OrtVariant", "ONNX Runtime", "onnx", "onnx"),
    Kind("pytorch-pruned", "slimformer.compression.pruning.compact:PrunedVariant",
         "pytorch-pruned", "transformers", "pytorch-pruned"),  # (before pytorch)
    Kind("pytorch", "slimformer.serving.torch:TransformersVariant", "PyTorch, transformers",
         "transformers", "pytorch"),
    # Asked for explicitly, e.g. `int8=outputs/onnx-int8@onnx-lean`: the same ONNX folder run
    # by the lean predictor (as the service runs it), or through optimum's pipeline().
    Kind("onnx-lean", "slimformer.serving.lean:LeanOnnxVariant", "onnx-lean", "onnx", "onnx",
         detected=False),
    Kind("onnx-pipeline", "slimformer.serving.ort:PipelineVariant", "onnx-pipeline", "onnx",
         "onnx", detected=False),
)
BY_NAME = {kind.name: kind for kind in DECLARED}


def kind_named(name: str) -> Kind:
    if name not in BY_NAME:
        fail(f"unknown variant kind {name!r}; known: {', '.join(BY_NAME)}")
    return BY_NAME[name]
