"""The variant interface: anything that maps a batch of texts to logits.

A variant is benchmarked, served and published the same way whatever runs it. This module
imports neither torch nor transformers, so the lean predictor stays lean."""

from __future__ import annotations

import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail
from slimformer.serving.fallback import FallbackRule, read_rule

MB = 1_000_000  # decimal megabytes, as download sizes are quoted


WEIGHT_SUFFIXES = (".safetensors", ".onnx", ".onnx_data", ".bin", ".pt", ".pth")


OOS_LABEL = "oos"  # CLINC150's out-of-scope intent: the answer to a query with no words


def check_texts(texts: Any) -> list[str]:
    """The texts of a predict call as a list: one string is one text; anything else that is
    not a non-empty list of strings is refused in one line."""
    if isinstance(texts, str):
        return [texts]
    if texts is None:
        fail("predict() needs a list of texts, got None")
    if not isinstance(texts, list | tuple):
        # A sequence that is not a list (a datasets Column, a numpy array of strings) is read
        # in order; a mapping, a set or bytes is refused.
        ordered = hasattr(texts, "__len__") and hasattr(texts, "__getitem__")
        if not ordered or isinstance(texts, bytes | bytearray | Mapping):
            fail(f"predict() needs a list of texts, got {type(texts).__name__}")
        texts = list(texts)
    if not texts:
        fail("predict() needs at least one text, got an empty list")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            fail(f"predict(): text {i} is {type(text).__name__}, not a string")
        if not text.isascii():  # (the common case skips the encode)
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as err:
                fail(f"predict(): text {i} is not valid Unicode ({err.reason} at character "
                     f"{err.start})")
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

    def logits(self, texts: list[str], batch_size: int = 64,
               progress: str | None = None) -> np.ndarray:
        """Logits of many texts (any sequence, a datasets column included), in batches; with
        `progress`, a progress bar of that name."""
        texts = list(texts)
        if self.batch_dependent:
            # Timed (p50) one query at a time, so measured one at a time: in batches of 32
            # the 4-layer student's int8 graph answered 0.15 pt fewer of CLINC150's in-scope
            # queries right, the teacher's 0.1 pt more (docs/optimize.md).
            batch_size = 1
        starts = range(0, len(texts), batch_size)
        if progress is not None:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=progress, leave=False)
        return np.concatenate([self.predict_logits(texts[i:i + batch_size]) for i in starts])

    @property
    def batch_dependent(self) -> bool:
        """Whether a text's logits depend on the other texts in its batch, as with dynamic
        int8 (one activation scale per batch). `logits()` then runs one text at a time."""
        return False

    @property
    def fallback(self) -> FallbackRule | None:
        """The out-of-scope fallback stored with the model (None: plain argmax)."""
        if not hasattr(self, "_fallback"):
            self._fallback = self.stored_fallback()
        return self._fallback

    @fallback.setter
    def fallback(self, rule: FallbackRule | None) -> None:
        self._fallback = rule

    def stored_fallback(self) -> FallbackRule | None:
        return read_rule(self.path) if self.path is not None else None

    def predict_ids(self, texts: list[str]) -> np.ndarray:
        """Label ids, with the stored out-of-scope fallback applied."""
        logits = self.predict_logits(texts)
        rule = self.fallback
        return rule.predict_ids(logits) if rule else logits.argmax(axis=-1)

    def predict(self, texts: list[str] | str, return_scores: bool = False,
                top_k: int = 0) -> list[str | int] | list[dict[str, Any]]:
        """Label names (ids where the config has none) for a batch of texts, with the stored
        out-of-scope fallback applied; with `return_scores`, one dict per text: `label`,
        `score` (softmax probability of the model's best label) and `fallback` (True where
        the rule replaced that label by `oos`), and with `top_k` > 0 also `top_k`: the k
        most probable labels with their probabilities.

        A text with no visible characters has no intent: it gets `oos` without running the
        model (an error for a model without an `oos` label).
        """
        texts = check_texts(texts)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            fail(f"predict(): top_k must be a whole number >= 0, got {top_k!r}")
        blank = [not text.strip() for text in texts]
        labels = self.labels
        if any(blank) and (labels is None or OOS_LABEL not in labels):
            fail(f"predict(): text {blank.index(True)} is empty; this model has no "
                 f"{OOS_LABEL!r} label to answer it with")
        answers: list[dict[str, Any]] = [{"label": OOS_LABEL, "score": 1.0, "fallback": True}
                                         for _ in texts]
        if top_k:
            for answer in answers:
                answer["top_k"] = [{"label": OOS_LABEL, "score": 1.0}]

        def name(label_id: Any) -> str | int:
            return labels[label_id] if labels else int(label_id)

        asked = [i for i, empty in enumerate(blank) if not empty]
        if asked:
            logits = self.predict_logits([texts[i] for i in asked])
            best = logits.argmax(axis=-1)
            rule = self.fallback
            ids = rule.predict_ids(logits) if rule else best
            shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
            top = probabilities.max(axis=-1).tolist()
            for row, (i, label_id, model_id, score) in enumerate(zip(asked, ids, best, top)):
                answers[i] = {"label": name(label_id), "score": float(score),
                              "fallback": bool(label_id != model_id)}
                if top_k:
                    order = np.argsort(-probabilities[row])[:top_k]
                    answers[i]["top_k"] = [{"label": name(j), "score": float(
                        probabilities[row, j])} for j in order]
        return answers if return_scores else [answer["label"] for answer in answers]

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


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="slimformer-"))
