"""Loading a classifier and its tokenizer safely: every broken file is one line naming it and
the fix."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
)

from slimformer.data.clinc import label_config
from slimformer.errors import fail, first_line
from slimformer.models.aliases import resolve_model


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


def load_tokenizer(name_or_path: str):
    return load_folder_tokenizer(resolve_model(name_or_path))


def load_classifier(name_or_path: str, labels: list[str] | None = None,
                    **config: Any) -> PreTrainedModel:
    """A sequence classifier with the data's labels (CLINC150's unless `labels` are given); a
    new head where the checkpoint has none or its labels differ."""
    name_or_path = resolve_model(name_or_path)
    if Path(name_or_path).is_dir():
        check_weight_files(Path(name_or_path))
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            name_or_path, **label_config(labels), ignore_mismatched_sizes=True, **config
        )
    except (OSError, ValueError) as err:
        fail(f"cannot load a model from {name_or_path!r}: {first_line(err)}", err)


def load_model_config(name_or_path: str) -> Any:
    """A model's config (folder, Hub id or alias) without its weights, for checks before work."""
    name_or_path = resolve_model(name_or_path)
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        fail(f"cannot read the config of {name_or_path!r}: {first_line(err)}", err)
