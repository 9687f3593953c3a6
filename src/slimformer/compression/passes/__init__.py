"""Compression passes, one declaration each (see docs/adding_a_pass.md).

A pass is one module here holding `PASS`: its name, its typed config, the kind of folder it
takes and makes, how it runs, its card title, phrase and tags, and the provenance step it
records. A variant is a chain of passes from a model, `onnx > O2 > int8`; the modules below are
the registry, imported only when a chain needs them.
"""

REGISTERED = (
    "slimformer.compression.passes.torch_int8",
    "slimformer.compression.passes.onnx_export",
    "slimformer.compression.passes.onnx_optimize",
    "slimformer.compression.passes.onnx_int8",
    "slimformer.compression.passes.onnx_int8_static",
    "slimformer.compression.passes.onnx_emb4",
    "slimformer.compression.passes.onnx_cls",
)
