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


def check_model_folder(folder: Path) -> None:
    """A folder given as a model holds its config.json (without it transformers guesses the
    model type from a substring of the folder's name, and the error names that guess)."""
    if folder.is_dir() and not (folder / "config.json").is_file():
        what = "it is empty" if not any(folder.iterdir()) else "it has no config.json"
        fail(f"{folder} is not a model folder: {what}; give the folder a model was saved "
             "in with save_pretrained()")


def untrained_head(folder: Path, config: Any) -> str:
    return (f"{folder} is not a trained classifier: its config names "
            f"{', '.join(getattr(config, 'architectures', None) or [config.model_type])}, "
            "with no classification head, so a new head would answer at random")


def check_trained_classifier(name_or_path: str | Path,
                             fix: str = "fine-tune it first (slimformer finetune)") -> None:
    """Refuse, from its config alone (before any work), a model with no trained head."""
    config = load_model_config(str(name_or_path))
    if not is_classifier_config(config):
        fail(f"{untrained_head(Path(resolve_model(str(name_or_path))), config)}; {fix}")


def load_classifier_folder(folder: Path, trained_head: bool = False):
    """A classifier as saved. A base model (or one whose head weights are missing) gets
    CLINC150's labels and a new head with a warning, or, with `trained_head` (a teacher),
    is refused: distilling from a random head teaches nothing."""
    folder = Path(folder)
    check_model_folder(folder)
    try:
        config = AutoConfig.from_pretrained(folder)
    except (OSError, ValueError) as err:
        fail(f"no model config in {folder}: {first_line(err)}", err)
    check_weight_files(folder)
    extra = {}
    if not is_classifier_config(config):
        if trained_head:
            fail(f"{untrained_head(folder, config)}; fine-tune it first (slimformer finetune)")
        warnings.warn(f"{untrained_head(folder, config)}: its accuracy is chance level",
                      stacklevel=2)
        torch.manual_seed(0)
        extra = label_config()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            folder, output_loading_info=True, **extra)
    except RuntimeError as err:
        if "size mismatch" not in str(err):
            raise
        fail(f"the weights in {folder} do not fit its config.json (it declares "
             f"{config.num_labels} labels): restore id2label and label2id in config.json "
             "to the labels the model was trained with", err)
    except (OSError, ValueError) as err:
        fail(f"cannot load a classifier from {folder}: {first_line(err)}", err)
    missing = info.get("missing_keys") or []
    if missing and is_classifier_config(config):
        message = (f"{folder} lacks trained weights for {', '.join(sorted(missing)[:4])}"
                   f"{' ...' if len(missing) > 4 else ''}: they are newly initialised")
        if trained_head:
            fail(f"{message}; save the trained model again with save_pretrained()")
        warnings.warn(f"{message}, so its answers are random", stacklevel=2)
    return model


def load_tokenizer(name_or_path: str):
    return load_folder_tokenizer(resolve_model(name_or_path))


def load_classifier(name_or_path: str, labels: list[str] | None = None,
                    **config: Any) -> PreTrainedModel:
    """A sequence classifier with the data's labels (CLINC150's unless `labels` are given); a
    new head where the checkpoint has none or its labels differ."""
    name_or_path = resolve_model(name_or_path)
    if Path(name_or_path).is_dir():
        check_model_folder(Path(name_or_path))
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
    check_model_folder(Path(name_or_path))
    try:
        return AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        fail(f"cannot read the config of {name_or_path!r}: {first_line(err)}", err)
