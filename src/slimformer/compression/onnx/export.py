"""ONNX export through Optimum, of a model folder or an in-memory model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimformer.errors import fail
from slimformer.files import staged_folder
from slimformer.models.aliases import resolve_path
from slimformer.models.onnx_files import ONNX_NAME, op_counts
from slimformer.provenance import write_provenance


def load_source_model(source: Path) -> tuple[Any, Any]:
    """A PyTorch classifier and its tokenizer from a folder (or the `minilm` alias)."""
    from slimformer.models.loading import load_classifier_folder, load_folder_tokenizer

    if not source.is_dir():
        fail(f"model folder not found: {source}")
    if not (source / "config.json").is_file():
        fail(f"no model in {source}: config.json is missing")
    if (source / "slimformer-int8.json").is_file():
        fail(f"{source} is a PyTorch int8 variant; export the float model it came from")
    model = load_classifier_folder(source)
    try:
        tokenizer = load_folder_tokenizer(source)
    except (OSError, ValueError) as err:
        fail(f"no tokenizer in {source}: {str(err).splitlines()[0]}")
    return model, tokenizer


def export_onnx(source: str | Path, output: str | Path, opset: int | None = None,
                overwrite: bool = False) -> Path:
    """Export a sequence classifier folder to ONNX (FP32) with Optimum; returns the folder."""
    source = resolve_path(str(source))
    model, tokenizer = load_source_model(source)
    return export_model_onnx(model, tokenizer, output, source, opset, overwrite)


def export_model_onnx(model: Any, tokenizer: Any, output: str | Path,
                      source: str | Path | None = None, opset: int | None = None,
                      overwrite: bool = False) -> Path:
    """Export an in-memory classifier (e.g. a compacted pruned one) to an ONNX folder."""
    from optimum.exporters.onnx import onnx_export_from_model

    with staged_folder(output, overwrite, step="onnx-export") as stage:
        try:
            onnx_export_from_model(model.eval(), stage, task="text-classification", opset=opset,
                                   do_validation=False)
        except (ValueError, KeyError, NotImplementedError) as err:
            fail(f"cannot export {source or 'the model'} ({model.config.model_type}) to ONNX: "
                 f"{str(err).splitlines()[0][:200]}")
        tokenizer.save_pretrained(stage)
        model.config.save_pretrained(stage)
        counts = op_counts(stage / ONNX_NAME)
        write_provenance(stage, "onnx-export",
                         {"opset": opset or "default", "nodes": sum(counts.values())},
                         source=source)
    return Path(output)
