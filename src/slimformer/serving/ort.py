"""ONNX folders run by Optimum's ORTModelForSequenceClassification, and through pipeline()."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail
from slimformer.models.onnx_files import (
    load_onnx_model,
    onnx_file,
    quantizes_per_batch,
    read_config,
)
from slimformer.serving.variant import Variant, check_texts


def session_options(threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


class OrtVariant(Variant):
    """An ONNX folder run by Optimum's ORTModelForSequenceClassification (CPU)."""

    kind = "onnx"

    def __init__(self, model: Any, tokenizer: Any, name: str, path: Path, max_length: int = 128):
        super().__init__(name, path)
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def detect(cls, folder: Path) -> bool:
        return any(folder.glob("*.onnx"))

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> OrtVariant:
        return cls(*load_ort_model(folder, threads), name, folder)

    @property
    def labels(self) -> list[str] | None:
        return config_labels(self.model.config)

    @cached_property
    def batch_dependent(self) -> bool:
        return self.model.path is not None and quantizes_per_batch(Path(self.model.path))

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        inputs = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="np")
        return np.asarray(self.model(**inputs).logits, dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "file": self.model.path.name if self.model.path else None}


def config_labels(config: Any) -> list[str]:
    id2label = config.id2label
    missing = [i for i in range(len(id2label)) if i not in id2label]
    if missing:
        fail(f"config.json: id2label has no label for id {missing[0]} (ids must run 0.."
             f"{len(id2label) - 1})")
    return [id2label[i] for i in range(len(id2label))]


def load_ort_model(folder: Path, threads: int = 1) -> tuple[Any, Any]:
    """ORTModelForSequenceClassification and tokenizer of an ONNX folder, checked first."""
    from optimum.onnxruntime import ORTModelForSequenceClassification

    from slimformer.models.loading import load_folder_tokenizer

    path = onnx_file(folder)
    load_onnx_model(path)
    read_config(folder)
    try:
        model = ORTModelForSequenceClassification.from_pretrained(
            folder, file_name=path.name, session_options=session_options(threads),
            provider="CPUExecutionProvider")
        tokenizer = load_folder_tokenizer(folder)
    except (OSError, ValueError) as err:
        fail(f"cannot load the ONNX model in {folder}: {str(err).splitlines()[0][:200]}")
    return model, tokenizer


def onnx_pipeline(folder: str | Path, threads: int = 1) -> Any:
    """transformers' text-classification pipeline on an ONNX folder (all scores, raw logits)."""
    from optimum.onnxruntime import pipeline

    model, tokenizer = load_ort_model(Path(folder), threads)
    return pipeline("text-classification", model=model, tokenizer=tokenizer)


class PipelineVariant(OrtVariant):
    """The same ONNX file run through `pipeline()`: what a user gets by composing it by hand."""

    kind = "onnx-pipeline"

    def __init__(self, pipe: Any, name: str, path: Path):
        super().__init__(pipe.model, pipe.tokenizer, name, path)
        self.pipe = pipe
        self.label_ids = {label: i for i, label in enumerate(config_labels(pipe.model.config))}

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> PipelineVariant:
        return cls(onnx_pipeline(folder, threads), name, folder)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        outputs = self.pipe(texts, top_k=None, function_to_apply="none", truncation=True,
                            max_length=self.max_length, batch_size=len(texts))
        logits = np.zeros((len(texts), len(self.label_ids)), dtype=np.float32)
        for row, scores in enumerate(outputs):
            for item in scores:
                logits[row, self.label_ids[item["label"]]] = item["score"]
        return logits
