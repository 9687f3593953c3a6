"""The PyTorch variant: a transformers sequence classifier, from a folder or in memory."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from slimformer.data import label_config
from slimformer.errors import fail, first_line
from slimformer.variants import Variant, check_texts, weight_files


def is_classifier_config(config: Any) -> bool:
    archs = getattr(config, "architectures", None) or []
    return any(a.endswith("ForSequenceClassification") for a in archs)


# What AutoTokenizer raises for missing or broken tokenizer files (a TypeError when it finds
# no vocabulary file at all).
TOKENIZER_ERRORS = (OSError, ValueError, TypeError, KeyError, AttributeError)


def load_folder_tokenizer(name_or_path: str | Path) -> Any:
    """The tokenizer saved with a model; its absence is a one-line error naming the fix."""
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except TOKENIZER_ERRORS as err:
        fail(f"no usable tokenizer in {name_or_path} ({first_line(err, 150)}): save the "
             "model's tokenizer beside it with tokenizer.save_pretrained(folder)", err)


def check_weight_files(folder: Path) -> None:
    """Every safetensors file in the folder opens: a truncated download fails here, in one
    line naming the file, not deep inside from_pretrained."""
    from safetensors import safe_open

    for path in sorted(Path(folder).glob("*.safetensors")):
        try:
            with safe_open(str(path), framework="pt") as weights:
                weights.keys()
        except Exception as err:  # safetensors raises its own SafetensorError
            fail(f"{path} is not a readable safetensors file (truncated or corrupt?): "
                 f"{first_line(err, 120)}; save or download it again", err)


def load_classifier_folder(folder: Path):
    """A trained classifier as saved; a base model gets CLINC150's labels and a new head."""
    folder = Path(folder)
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as err:
        fail(f"no model config in {folder}: {first_line(err)}", err)
    check_weight_files(folder)
    extra = {}
    if not is_classifier_config(config):
        warnings.warn(f"{folder} holds no classification head: a random one is added, "
                      "so its accuracy is chance level", stacklevel=2)
        torch.manual_seed(0)
        extra = label_config()
    try:
        return AutoModelForSequenceClassification.from_pretrained(folder, **extra)
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        fail(f"the weights in {folder} do not fit its config.json (it declares "
             f"{config.num_labels} labels): restore id2label and label2id in config.json "
             "to the labels the model was trained with", err)
    except (OSError, ValueError) as err:
        fail(f"cannot load a classifier from {folder}: {first_line(err)}", err)


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

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        with torch.inference_mode():
            inputs = encode(self.tokenizer, texts, self.max_length, return_tensors="pt")
            return self.model(**inputs).logits.float().numpy()

    def size_mb(self) -> float:
        if self.path is None:
            from slimformer.variants import scratch_dir, weights_size_mb

            folder = scratch_dir()
            self.save(folder)
            return weights_size_mb(folder)
        return super().size_mb()

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
