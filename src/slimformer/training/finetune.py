"""Fine-tuning a sequence classifier on CLINC150 with the plain Trainer (how a teacher is made)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import (
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from slimformer.data.args import DataArguments
from slimformer.data.clinc import load_clinc, tokenize
from slimformer.data.metrics import compute_metrics
from slimformer.models.aliases import base_model_id
from slimformer.models.loading import load_classifier, load_tokenizer
from slimformer.provenance import write_provenance
from slimformer.training.run_folder import data_identity, start_run


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
    identity = {"step": "finetune", "model": base_model_id(model_name_or_path),
                **data_identity(data_args)}
    tokenizer = load_tokenizer(model_name_or_path)
    dataset = load_clinc(data_args.data_file, data_args.dataset_config,
                         max_samples=data_args.max_samples)
    with training_args.main_process_first(desc="tokenize"):
        encoded = tokenize(dataset, tokenizer, data_args.max_length)
    model = load_classifier(model_name_or_path)
    checkpoint = start_run(training_args, "finetune", identity)
    trainer = Trainer(model=model, args=training_args, **trainer_data(encoded, tokenizer))
    result = trainer.train(resume_from_checkpoint=checkpoint)
    metrics = {**result.metrics, "global_step": result.global_step,
               **evaluate_splits(trainer, encoded)}
    save_outputs(trainer, metrics, tokenizer)
    if trainer.is_world_process_zero():
        write_provenance(training_args.output_dir, "finetune",
                         {**finetune_settings(model_name_or_path, training_args),
                          "resumed_from": checkpoint and Path(checkpoint).name},
                         base_model=base_model_id(model_name_or_path),
                         test_accuracy=metrics.get("test_accuracy"))
    return metrics


def finetune_settings(model_name_or_path: str, args: TrainingArguments) -> dict[str, Any]:
    return {"model": base_model_id(model_name_or_path), "learning_rate": args.learning_rate,
            "epochs": args.num_train_epochs, "batch_size": args.per_device_train_batch_size,
            "dataset": "clinc_oos (plus)"}
