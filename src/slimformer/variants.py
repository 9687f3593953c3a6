"""The variant interface: anything that maps a batch of texts to logits, plus how to find one.

A variant is benchmarked, served and published the same way whatever runs it (PyTorch,
PyTorch int8, ONNX Runtime through Optimum, or the lean ONNX predictor). Each kind is a
class with `detect(folder)` and `load(folder, name, threads)`; `load_variant` picks the
kind from the folder's files unless the spec names one (`name=path@kind`).
This module imports neither torch nor transformers, so the lean predictor stays lean.
"""

from __future__ import annotations

import importlib
import re
import tempfile
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail

MB = 1_000_000  # decimal megabytes, as download sizes are quoted
WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx_data", ".bin", ".pt", ".pth")
# Kind name -> "module:Class"; tried in this order when a folder's kind is not given.
KINDS: dict[str, str] = {
    "pytorch-int8": "slimformer.quantize:TorchInt8Variant",
    "onnx": "slimformer.onnx:OrtVariant",
    "pytorch-pruned": "slimformer.prune_compact:PrunedVariant",  # before "pytorch"
    "pytorch": "slimformer.torch_variant:TransformersVariant",
    # Never detected: asked for explicitly, e.g. `int8=outputs/onnx-int8@onnx-lean`.
    "onnx-lean": "slimformer.lean:LeanOnnxVariant",
    # Never detected: the same ONNX file run through optimum's pipeline() (for comparison).
    "onnx-pipeline": "slimformer.onnx:PipelineVariant",
}
UNDETECTED_KINDS = {"onnx-lean", "onnx-pipeline"}
MODEL_ALIASES = {"minilm"}
OOS_LABEL = "oos"  # CLINC150's out-of-scope intent: the answer to a query with no words


def check_texts(texts: Any) -> list[str]:
    """The texts of a predict call as a list: one string is one text; anything else that is
    not a non-empty list of strings is refused in one line."""
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        fail("predict() needs a list of texts, got None")
    if not isinstance(texts, list | tuple):
        fail(f"predict() needs a list of texts, got {type(texts).__name__}")
    if not texts:
        fail("predict() needs at least one text, got an empty list")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            fail(f"predict(): text {i} is {type(text).__name__}, not a string")
    return list(texts)


class Variant(ABC):
    """A classifier variant: texts in, logits (n_texts x n_labels, float32) out."""

    kind: str = "abstract"

    def __init__(self, name: str, path: str | Path | None = None):
        self.name = name
        self.path = Path(path) if path is not None else None

    @abstractmethod
    def predict_logits(self, texts: list[str]) -> np.ndarray:
        """Logits for a batch of texts, tokenization included."""

    @property
    @abstractmethod
    def labels(self) -> list[str] | None:
        """Label names by id, as the model's config has them (None when unknown)."""

    def predict(self, texts: list[str] | str) -> list[str | int]:
        """Label names (ids where the config has none) for a batch of texts.

        A text with no visible characters has no intent: it gets `oos` without running the
        model (an error for a model without an `oos` label).
        """
        texts = check_texts(texts)
        blank = [not text.strip() for text in texts]
        labels = self.labels
        if any(blank) and (labels is None or OOS_LABEL not in labels):
            fail(f"predict(): text {blank.index(True)} is empty; this model has no "
                 f"{OOS_LABEL!r} label to answer it with")
        answers: list[str | int] = [OOS_LABEL] * len(texts)
        asked = [i for i, empty in enumerate(blank) if not empty]
        if asked:
            ids = self.predict_logits([texts[i] for i in asked]).argmax(axis=-1)
            for i, label_id in zip(asked, ids):
                answers[i] = labels[label_id] if labels else int(label_id)
        return answers

    def size_mb(self) -> float:
        """Size of what a user downloads to run it: the weight / ONNX files."""
        if self.path is None:
            fail(f"variant {self.name!r} has no folder to measure; save it first")
        return weights_size_mb(self.path)

    def save(self, folder: Path) -> None:
        """Write the variant to a folder that `load_variant` reads back (in-memory variants)."""
        fail(f"variant {self.name!r} of kind {self.kind} cannot be saved")

    def reloadable(self, scratch: Path) -> tuple[Path, str]:
        """A folder and kind from which a fresh process can load this variant."""
        if self.path is None:
            self.save(scratch)
            return scratch, self.kind
        return self.path, self.kind

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind,
                "path": str(self.path) if self.path else None}


def weight_files(folder: Path) -> list[Path]:
    return sorted(p for p in Path(folder).rglob("*")
                  if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES)
                  and "checkpoint-" not in str(p.relative_to(folder))
                  and p.name != "training_args.bin")


def weights_size_mb(folder: Path) -> float:
    files = weight_files(folder)
    if not files:
        fail(f"no model weights (*.safetensors, *.onnx, *.bin) in {folder}")
    return sum(p.stat().st_size for p in files) / MB


def variant_class(kind: str) -> type[Variant]:
    if kind not in KINDS:
        fail(f"unknown variant kind {kind!r}; known: {', '.join(KINDS)}")
    module, cls = KINDS[kind].split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as err:
        fail(f"variant kind {kind!r} is not available here: {err}")


def resolve_path(path: str) -> Path:
    if path in MODEL_ALIASES:
        from slimformer.train import resolve_model

        return Path(resolve_model(path))
    return Path(path)


def detect_kind(folder: Path) -> str:
    if not folder.exists():
        fail(f"model folder not found: {folder}")
    if not folder.is_dir():
        fail(f"not a model folder: {folder}")
    for kind in KINDS:
        if kind in UNDETECTED_KINDS:
            continue
        try:
            cls = variant_class(kind)
        except Exception:
            continue
        if cls.detect(folder):
            return kind
    fail(f"no model in {folder}: expected config.json with weights, or an .onnx file")


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """`name=path@kind` -> (name, path, kind); name defaults to the folder's name."""
    match = re.fullmatch(r"(?:(?P<name>[^=@]+)=)?(?P<path>[^@]+)(?:@(?P<kind>[\w-]+))?", spec)
    if not match:
        fail(f"bad variant spec {spec!r}; expected NAME=PATH or NAME=PATH@KIND")
    path = match["path"]
    name = match["name"] or Path(path).name
    return name, path, match["kind"]


def load_variant(spec: str, threads: int = 1, name: str | None = None,
                 kind: str | None = None) -> Variant:
    """Load a variant from `name=path@kind` (name and kind optional)."""
    spec_name, raw_path, spec_kind = parse_spec(spec)
    folder = resolve_path(raw_path)
    kind = kind or spec_kind or detect_kind(folder)
    if not folder.is_dir():
        fail(f"model folder not found: {folder}")
    return variant_class(kind).load(folder, name or spec_name, threads)


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="slimformer-"))
