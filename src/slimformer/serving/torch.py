"""The PyTorch variant: a transformers sequence classifier, from a folder or in memory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from slimformer.models.loading import load_classifier_folder, load_folder_tokenizer
from slimformer.serving.variant import Variant, check_texts, weight_files


def encode(tokenizer: Any, texts: list[str], max_length: int, **kwargs: Any) -> dict[str, Any]:
    return tokenizer(texts, padding=True, truncation=True, max_length=max_length, **kwargs)


class TransformersVariant(Variant):
    kind = "pytorch"

    def __init__(self, model: Any, tokenizer: Any, name: str, path: str | Path | None = None,
                 max_length: int = 128):
        super().__init__(name, path)
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def detect(cls, folder: Path) -> bool:
        return (folder / "config.json").is_file() and any(
            p.suffix in (".safetensors", ".bin") for p in weight_files(folder))

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> TransformersVariant:
        torch.set_num_threads(threads)
        model = load_classifier_folder(folder)
        return cls(model, load_folder_tokenizer(folder), name, folder)

    @property
    def labels(self) -> list[str] | None:
        id2label = self.model.config.id2label
        return [id2label[i] for i in range(len(id2label))]

    def stored_fallback(self):
        from slimformer.serving.fallback import rule_from_config

        return rule_from_config(self.model.config.to_dict())

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        with torch.inference_mode():
            inputs = encode(self.tokenizer, texts, self.max_length, return_tensors="pt")
            return self.model(**inputs).logits.float().numpy()

    def size_mb(self) -> float:
        if self.path is None:
            from slimformer.serving.variant import scratch_dir, weights_size_mb

            folder = scratch_dir()
            self.save(folder)
            return weights_size_mb(folder)
        return super().size_mb()

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
