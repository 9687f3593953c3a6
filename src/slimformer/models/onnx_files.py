"""ONNX model folders: finding the graph, reading it safely, its config."""

from __future__ import annotations

import json
import mmap
from collections import Counter
from pathlib import Path
from typing import Any

from slimformer.errors import fail

ONNX_NAME = "model.onnx"


def onnx_file(folder: str | Path) -> Path:
    """The folder's ONNX model: `model.onnx`, else its only *.onnx file."""
    folder = Path(folder)
    if not folder.is_dir():
        fail(f"model folder not found: {folder}")
    if (folder / ONNX_NAME).is_file():
        return folder / ONNX_NAME
    files = sorted(folder.glob("*.onnx"))
    if not files:
        fail(f"no ONNX model (*.onnx) in {folder}")
    if len(files) > 1:
        fail(f"{folder} holds several ONNX files ({', '.join(p.name for p in files)}); "
             f"keep one or name it {ONNX_NAME}")
    return files[0]


def quantizes_per_batch(path: Path) -> bool:
    """Whether the graph quantizes activations on the fly (DynamicQuantizeLinear,
    DynamicQuantizeMatMul): one scale for the whole batch, so a text's logits depend on the
    texts batched (and padded) with it. Op types are plain strings in the protobuf, so a byte
    search answers without parsing the graph or importing onnx."""
    if path.stat().st_size == 0:
        return False
    with open(path, "rb") as file, mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return data.find(b"DynamicQuantize") >= 0


def load_onnx_model(path: Path) -> Any:
    """The parsed ONNX graph; a truncated or non-ONNX file gets a one-line error naming it."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as err:
        if not runs_in_onnxruntime(path):
            bad(path, err)
    except Exception as err:  # protobuf's DecodeError, OSError...
        bad(path, err)
    return model


def bad(path: Path, err: Exception) -> None:
    reason = str(err).splitlines()[0] if str(err) else type(err).__name__
    fail(f"{path} is not a valid ONNX model (truncated or not ONNX?): {reason[:200]}")


def runs_in_onnxruntime(path: Path) -> bool:
    """Whether ONNX Runtime loads a graph that onnx's checker rejects. ORTQuantizer's output
    for DeBERTa-v2 is one: nodes inside its If branches read outer values that the quantizer
    moved after them, which the checker calls unsorted; ONNX Runtime sorts and runs it."""
    import onnxruntime

    try:
        onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - any failure means the graph does not run
        return False
    return True


def op_counts(path: str | Path) -> dict[str, int]:
    """How many nodes of each operator type the graph holds."""
    model = load_onnx_model(Path(path))
    return dict(Counter(node.op_type for node in model.graph.node))


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        fail(f"no config.json in {folder}: the ONNX folder needs the model's config beside it")
    return json.loads(path.read_text())
