"""slimformer: make transformer text classifiers fast and small, and prove it with numbers.

The public API, imported lazily (as trl does) so that `import slimformer` and the lean
predictor stay light; each name loads its stage only when first used:

    from slimformer import load_variant, finetune, distill, search, compress, prune
    from slimformer import benchmark, write_report, render_card, push, dry_run

The stages, in the order data flows (a stage never imports a later one): `data`, `models`,
`serving`, `training`, `compression`, `evaluation`, `hub`, `optimize`; `cli` is the `slimformer`
command.
"""

from __future__ import annotations

import importlib
from typing import Any

from slimformer.errors import SlimformerError

__version__ = "0.1.0"

# public name -> (module, attribute)
_API: dict[str, tuple[str, str]] = {
    # data
    "load_clinc": ("slimformer.data.clinc", "load_clinc"),
    "DataArguments": ("slimformer.data.args", "DataArguments"),
    # serving
    "load_variant": ("slimformer.serving.registry", "load_variant"),
    "Variant": ("slimformer.serving.variant", "Variant"),
    "LeanOnnxVariant": ("slimformer.serving.lean", "LeanOnnxVariant"),
    # training
    "finetune": ("slimformer.training.finetune", "finetune"),
    "distill": ("slimformer.training.distill_run", "distill"),
    "search": ("slimformer.training.search", "run_search"),
    "DistillArguments": ("slimformer.training.args", "DistillArguments"),
    "DistillationTrainingArguments": ("slimformer.training.args",
                                      "DistillationTrainingArguments"),
    # compression
    "compress": ("slimformer.compression.variants", "make_variants"),
    "CompressArguments": ("slimformer.compression.args", "CompressArguments"),
    "export_onnx": ("slimformer.compression.onnx.export", "export_onnx"),
    "optimize_onnx": ("slimformer.compression.onnx.optimize", "optimize_onnx"),
    "quantize_dynamic": ("slimformer.compression.onnx.quantize", "quantize_dynamic"),
    "quantize_static": ("slimformer.compression.onnx.quantize", "quantize_static"),
    "quantize_torch_folder": ("slimformer.compression.torch_int8", "quantize_torch_folder"),
    "load_torch_int8": ("slimformer.compression.torch_int8", "load_torch_int8"),
    "prune": ("slimformer.compression.pruning.run", "prune"),
    "load_pruned": ("slimformer.compression.pruning.compact", "load_pruned"),
    # evaluation
    "benchmark": ("slimformer.evaluation.benchmark", "benchmark_variants"),
    "benchmark_folders": ("slimformer.evaluation.benchmark", "benchmark_folders"),
    "BenchmarkSettings": ("slimformer.evaluation.settings", "BenchmarkSettings"),
    "write_report": ("slimformer.evaluation.report", "write_report"),
    # hub
    "render_card": ("slimformer.hub.card", "render_card"),
    "plan_push": ("slimformer.hub.push_plan", "plan_push"),
    "dry_run": ("slimformer.hub.staging", "dry_run"),
    "push": ("slimformer.hub.push", "push"),
    # the whole chain
    "run_optimize": ("slimformer.optimize.run", "optimize"),  # `optimize` is the subpackage
    "OptimizeArguments": ("slimformer.optimize.args", "OptimizeArguments"),
}

__all__ = ["SlimformerError", "__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'slimformer' has no attribute {name!r}")
    module, attribute = _API[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
