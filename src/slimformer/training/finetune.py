"""Fine-tuning a sequence classifier on CLINC150 (or any text-classification data) with the
plain Trainer (how a teacher is made)."""

from __future__ import annotations

import errno
import json
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import (
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

from slimformer.data.args import DataArguments
from slimformer.data.clinc import tokenize
from slimformer.data.dataset import label_names, load_data, oos_id_of
from slimformer.data.metrics import metrics_for
from slimformer.errors import fail
from slimformer.files import make_stage, replace_folder
from slimformer.models.aliases import base_model_id
from slimformer.models.loading import load_classifier, load_model_config, load_tokenizer
from slimformer.provenance import write_provenance
from slimformer.training.progress import ProgressLines
from slimformer.training.run_folder import data_identity, removed_on_failure, start_run

logger = logging.getLogger(__name__)


class HeadRateTrainer(Trainer):
    """A Trainer whose classification head (every parameter outside the base model) learns at
    `args.head_learning_rate`: a head initialised at random on a pretrained encoder needs a
    far higher rate than the encoder, or one epoch leaves it half-trained."""

    def create_optimizer(self):
        rate = getattr(self.args, "head_learning_rate", None)
        if self.optimizer is None and rate:
            model = self.model
            decay = set(self.get_decay_parameter_names(model))
            prefix = f"{model.base_model_prefix}."
            groups: dict[tuple[bool, bool], list[Any]] = {}
            for name, parameter in model.named_parameters():
                if parameter.requires_grad:
                    key = (not name.startswith(prefix), name in decay)
                    groups.setdefault(key, []).append(parameter)
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
            self.optimizer = optimizer_cls(
                [{"params": params, "lr": rate if head else self.args.learning_rate,
                  "weight_decay": self.args.weight_decay if decays else 0.0}
                 for (head, decays), params in groups.items()], **kwargs)
        return super().create_optimizer()


def check_finite(trainer: Trainer, metrics: dict[str, float]) -> None:
    """A diverged run (NaN or infinite loss or weights) is never saved as a model."""
    import math

    import torch

    loss = metrics.get("train_loss")
    if loss is not None and not math.isfinite(loss):
        fail(f"training diverged (train loss {loss}): nothing was saved; lower the learning "
             "rate or check the settings")
    model = trainer.accelerator.unwrap_model(trainer.model)
    bad = next((name for name, p in model.named_parameters()
                if not torch.isfinite(p.detach()).all()), None)
    if bad is not None:
        fail(f"training left non-finite weights ({bad}): nothing was saved; lower the "
             "learning rate or check the settings")


def save_outputs(trainer: Trainer, metrics: dict[str, float], tokenizer: Any,
                 record: Callable[[Path], Any] | None = None) -> None:
    """Model (safetensors), tokenizer, metrics and `record(folder)` (the provenance), once
    they are checked finite. They are written into a staging folder beside the output
    folder, which takes the run's checkpoints along and replaces it only once everything is
    written: a full disk leaves no model folder without weights, and a failed final rename
    puts the checkpoints back. Only the main process writes."""
    check_finite(trainer, metrics)
    if not trainer.is_world_process_zero():
        trainer.save_model()  # a collective in sharded runs; writes nothing off the main process
        return
    out = Path(trainer.args.output_dir)
    stage = make_stage(out)
    moved: list[str] = []  # the run's checkpoints and record, taken into the stage
    try:
        trainer.save_model(str(stage))
        # The Trainer pickles its arguments beside the weights; keep them as JSON (tokens
        # masked by to_dict), so a model folder holds no pickle.
        (stage / "training_args.bin").unlink(missing_ok=True)
        (stage / "training_args.json").write_text(trainer.args.to_json_string())
        tokenizer.save_pretrained(stage)
        metrics = {**metrics, "world_size": trainer.args.world_size}
        (stage / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
        if record is not None:
            record(stage)
        for entry in out.iterdir() if out.is_dir() else ():
            if not (stage / entry.name).exists():  # checkpoints, the run record
                entry.rename(stage / entry.name)
                moved.append(entry.name)
        replace_folder(stage, out)
    except BaseException as err:
        for name in moved if out.is_dir() else ():  # back where they were, not deleted
            (stage / name).rename(out / name)
        shutil.rmtree(stage, ignore_errors=True)
        if disk_full(err):
            fail(f"no space left on the disk of {out}: the model was not saved; free some "
                 "space or choose another --output_dir", err)
        raise


def disk_full(err: BaseException) -> bool:
    """ENOSPC, from Python's own writes or from safetensors' (its error carries only text)."""
    return ((isinstance(err, OSError) and err.errno == errno.ENOSPC)
            or "No space left on device" in str(err))


def trainer_data(encoded: Any, tokenizer: Any, oos_label: str | None,
                 args: TrainingArguments | None = None) -> dict[str, Any]:
    """The Trainer arguments every run shares: splits, padding collator, metrics (with
    `oos_label` as out of scope, when the data has it), and progress lines where `args` turn
    the tqdm bar off."""
    names = list(encoded["train"].features["labels"].names)
    return {"train_dataset": encoded["train"], "eval_dataset": encoded["validation"],
            "data_collator": DataCollatorWithPadding(tokenizer), "processing_class": tokenizer,
            "compute_metrics": metrics_for(oos_id_of(names, oos_label)),
            "callbacks": [ProgressLines()] if args is not None and args.disable_tqdm else None}


def evaluate_splits(trainer: Trainer, encoded: Any, data_args: DataArguments | None = None,
                    ) -> dict[str, Any]:
    """Validation and test metrics; with `data_args`, the out-of-scope fallback is fitted on
    the validation logits and put in the model's config, so saving the model stores it (a
    rule copied from a teacher's config is replaced)."""
    validation = trainer.predict(encoded["validation"], metric_key_prefix="validation")
    metrics = dict(validation.metrics)
    metrics.update(trainer.evaluate(encoded["test"], metric_key_prefix="test"))
    if data_args is not None:
        from slimformer.serving.fallback import CONFIG_KEY, rule_for_split

        logits = validation.predictions
        rule = rule_for_split(logits[0] if isinstance(logits, tuple) else logits,
                              encoded["validation"], data_args, labels=validation.label_ids)
        config = trainer.accelerator.unwrap_model(trainer.model).config
        setattr(config, CONFIG_KEY, rule.to_dict() if rule else None)
        if rule is not None:
            metrics["validation_fallback"] = rule.figures["with"]
            logger.info("out-of-scope fallback: %s", rule.describe())
        names = list(encoded["train"].features["labels"].names)
        if data_args.oos_label not in names:  # no NaN recall: say why there is none
            metrics = {k: v for k, v in metrics.items() if "oos" not in k}
            metrics["out_of_scope"] = (f"none: the data has no label {data_args.oos_label!r}, "
                                       "so no fallback and no out-of-scope recall")
    return metrics


def finetune(model_name_or_path: str, data_args: DataArguments,
             training_args: TrainingArguments) -> dict[str, float]:
    """Fine-tune a checkpoint on the data; returns train, validation and test metrics."""
    identity = {"step": "finetune", "model": base_model_id(model_name_or_path),
                **data_identity(data_args)}
    load_model_config(model_name_or_path)  # a folder that holds no model: said in one line
    tokenizer = load_tokenizer(model_name_or_path)
    dataset = load_data(data_args)
    with training_args.main_process_first(desc="tokenize"):
        encoded = tokenize(dataset, tokenizer, data_args.max_length)
    model = load_classifier(model_name_or_path, labels=label_names(dataset))
    with removed_on_failure(training_args):
        checkpoint = start_run(training_args, "finetune", identity)
        trainer = HeadRateTrainer(model=model, args=training_args,
                                  **trainer_data(encoded, tokenizer, data_args.oos_label,
                                                 training_args))
        result = trainer.train(resume_from_checkpoint=checkpoint)
        metrics = {**result.metrics, "global_step": result.global_step,
                   **evaluate_splits(trainer, encoded, data_args)}

        def record(folder: Path) -> None:
            write_provenance(folder, "finetune",
                             {**finetune_settings(model_name_or_path, training_args),
                              "dataset": dataset_description(data_args),
                              **what_ran(trainer, training_args),
                              "resumed_from": checkpoint and Path(checkpoint).name},
                             base_model=base_model_id(model_name_or_path),
                             test_accuracy=metrics.get("test_accuracy"))

        save_outputs(trainer, metrics, tokenizer, record)
    return metrics


def what_ran(trainer: Trainer, args: TrainingArguments) -> dict[str, Any]:
    """Epochs and optimizer steps done (a max_steps or an early stop ends before the epochs
    asked for: cards show what ran)."""
    done = {"epochs": round(float(trainer.state.epoch or 0), 2),
            "steps": int(trainer.state.global_step)}
    if done["epochs"] != round(float(args.num_train_epochs), 2):
        done["epochs_asked"] = args.num_train_epochs
    return done


def finetune_settings(model_name_or_path: str, args: TrainingArguments) -> dict[str, Any]:
    settings = {"model": base_model_id(model_name_or_path), "learning_rate": args.learning_rate,
                "epochs": args.num_train_epochs, "batch_size": args.per_device_train_batch_size}
    if getattr(args, "head_learning_rate", None):
        settings["head_learning_rate"] = args.head_learning_rate
    return settings


def dataset_description(data_args: DataArguments) -> str:
    """The data as a card names it: a Hub id, or a local file's name."""
    if data_args.dataset is None:
        return f"clinc_oos ({data_args.dataset_config or 'plus'})"
    source = data_args.dataset
    return source if not Path(source).exists() else f"local file {Path(source).name}"
