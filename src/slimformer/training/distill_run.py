"""Wiring for a distillation run: teacher, student, cached teacher logits and the trainer."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from transformers import PreTrainedModel

from slimformer.data.args import DataArguments
from slimformer.data.clinc import tokenize
from slimformer.data.dataset import check_label_names, label_names, load_data
from slimformer.errors import fail
from slimformer.models.aliases import base_model_id, resolve_model
from slimformer.models.loading import load_classifier, load_tokenizer
from slimformer.provenance import write_provenance
from slimformer.training.args import DistillArguments, DistillationTrainingArguments
from slimformer.training.distill import (
    DistillationTrainer,
    cached_teacher_logits,
    check_label_maps,
    student_from_teacher,
    with_teacher_logits,
)
from slimformer.training.finetune import evaluate_splits, save_outputs, trainer_data, what_ran
from slimformer.training.run_folder import data_identity, removed_on_failure, start_run


@dataclass
class DistillationRun:
    trainer: DistillationTrainer
    encoded: Any
    tokenizer: Any
    teacher: PreTrainedModel | None
    checkpoint: str | None = None  # to resume from
    augmented: dict[str, Any] = dataclasses.field(default_factory=dict)  # the transfer set


def student_factory(args: DistillArguments, teacher: PreTrainedModel | None,
                    labels: list[str] | None = None) -> Callable[..., PreTrainedModel]:
    """A function building a fresh student (Trainer's model_init, one per search trial)."""
    if args.student_layers:
        if teacher is None:
            fail("student_layers builds the student from the teacher: give teacher_model too")

        def from_teacher(trial: Any = None) -> PreTrainedModel:
            return student_from_teacher(teacher, list(args.student_layers))

        return from_teacher
    if not args.student_model:
        fail("no student: give student_model (a checkpoint) or student_layers (teacher layers)")

    def from_checkpoint(trial: Any = None) -> PreTrainedModel:
        return load_classifier(args.student_model, labels=labels)

    return from_checkpoint


def student_tokenizer(args: DistillArguments) -> Any:
    return load_tokenizer(args.student_model or args.teacher_model)


def load_teacher(args: DistillArguments) -> PreTrainedModel | None:
    if not args.teacher_model:
        return None
    from slimformer.models.loading import load_classifier_folder

    return load_classifier_folder(resolve_model(args.teacher_model), trained_head=True).eval()


def build_distillation(args: DistillArguments, data_args: DataArguments,
                       training_args: DistillationTrainingArguments,
                       for_search: bool = False) -> DistillationRun:
    """Everything checked and prepared before any training starts."""
    teacher = load_teacher(args)
    if teacher is None and training_args.alpha < 1.0:
        fail(f"alpha={training_args.alpha} needs a teacher: give teacher_model, or set alpha 1")
    dataset = load_data(data_args)
    labels = label_names(dataset)
    if teacher is not None:
        check_label_names(list(teacher.config.id2label.values()), labels,
                          f"teacher {args.teacher_model}")
    layer_losses = training_args.layer_losses or (for_search and bool(args.student_layers))
    if layer_losses and not args.student_layers:
        fail("hidden_weight / attention_weight compare each student layer with the teacher "
             "layer it was cut from: give student_layers")
    if args.augment and (teacher is None or training_args.alpha >= 1.0):
        fail("--augment adds queries that have no label: they need a teacher (teacher_model) "
             "and alpha < 1")
    make_student = student_factory(args, teacher, labels)
    student = make_student()
    if teacher is not None:
        check_label_maps(teacher, student)
    tokenizer = student_tokenizer(args)
    # Everything is loaded and checked: the output folder is claimed before anything is written
    # (the teacher-logit cache may live inside it). A search's trials own no folder of theirs.
    checkpoint = None if for_search else start_run(
        training_args, "distill", run_identity(args, data_args, training_args))
    # alpha = 1 learns from labels alone: no teacher logits to compute (the search varies alpha)
    needs_teacher = teacher is not None and (for_search or training_args.alpha < 1.0
                                             or layer_losses)
    augmented: dict[str, Any] = {}
    if args.augment:
        dataset, augmented = with_transfer_set(dataset, args, teacher, training_args.seed)
    use_cache = needs_teacher and args.cache_teacher_logits
    if needs_teacher and not use_cache:
        teacher_vocab = load_tokenizer(args.teacher_model).get_vocab()
        if teacher_vocab != tokenizer.get_vocab():
            fail("teacher and student tokenizers differ: keep cache_teacher_logits on so the "
                 "teacher reads its own tokens")
    if use_cache:
        with training_args.main_process_first(desc="teacher logits"):
            logits = cached_teacher_logits(
                teacher, load_tokenizer(args.teacher_model), dataset["train"], args.cache_dir,
                data_args.max_length, is_main_process=training_args.should_save)
        dataset = with_teacher_logits(dataset, logits)
    with training_args.main_process_first(desc="tokenize"):
        encoded = tokenize(dataset, tokenizer, data_args.max_length)
    trainer = DistillationTrainer(
        model=None if for_search else student,
        model_init=make_student if for_search else None,
        args=training_args,
        **trainer_data(encoded, tokenizer, data_args.oos_label, training_args),
        teacher_model=teacher if needs_teacher and (layer_losses or not use_cache) else None,
        layer_map=args.student_layers,
    )
    return DistillationRun(trainer, encoded, tokenizer, teacher, checkpoint, augmented)


def with_transfer_set(dataset: Any, args: DistillArguments, teacher: PreTrainedModel,
                      seed: int) -> tuple[Any, dict[str, Any]]:
    """The data with the training split augmented (see slimformer.data.augment)."""
    from datasets import DatasetDict

    from slimformer.data.augment import AugmentSettings, augment_split
    from slimformer.training.neighbours import embedding_neighbours

    teacher_tokenizer = load_tokenizer(args.teacher_model)
    neighbours = (embedding_neighbours(teacher, teacher_tokenizer, dataset["train"]["text"])
                  if "neighbour" in args.augment_methods else {})
    settings = AugmentSettings(
        per_query=args.augment, methods=tuple(args.augment_methods), seed=seed,
        mask_token=teacher_tokenizer.mask_token or teacher_tokenizer.unk_token or "",
        neighbours=neighbours)
    train, record = augment_split(dataset["train"], settings)
    return DatasetDict({**dataset, "train": train}), record


def run_identity(args: DistillArguments, data_args: DataArguments,
                 training_args: DistillationTrainingArguments) -> dict[str, Any]:
    """What a checkpoint must have been made from to be resumed: student, teacher, data."""
    identity = {"step": "distill", "student": args.student_model,
                "layers": args.student_layers, "teacher": args.teacher_model,
                **data_identity(data_args)}
    if args.augment:  # (absent: checkpoints of runs without a transfer set still resume)
        identity["augment"] = {"per_query": args.augment, "methods": args.augment_methods,
                               "seed": training_args.seed}
    return identity


def provenance_settings(args: DistillArguments, training_args: DistillationTrainingArguments,
                        ) -> dict[str, Any]:
    return {
        "teacher": args.teacher_model, "student_model": args.student_model,
        "student_layers": args.student_layers, "alpha": training_args.alpha,
        "temperature": training_args.temperature, "soft_loss": training_args.soft_loss,
        "learning_rate": training_args.learning_rate,
        "hidden_weight": training_args.hidden_weight,
        "attention_weight": training_args.attention_weight,
        "epochs": training_args.num_train_epochs,
        "batch_size": training_args.per_device_train_batch_size,
        "cached_teacher_logits": bool(args.teacher_model and args.cache_teacher_logits),
        "augment": args.augment,
    }


def distill(args: DistillArguments, data_args: DataArguments,
            training_args: DistillationTrainingArguments) -> dict[str, float]:
    """Train the student; writes model folder, tokenizer, metrics.json and slimformer.json."""
    with removed_on_failure(training_args):
        run = build_distillation(args, data_args, training_args)
        result = run.trainer.train(resume_from_checkpoint=run.checkpoint)
        metrics = {**result.metrics, "global_step": result.global_step,
                   **evaluate_splits(run.trainer, run.encoded, data_args)}

        def record(folder: Path) -> None:
            step = "distill" if args.teacher_model and training_args.alpha < 1 else "finetune"
            write_provenance(folder, step,
                             {**provenance_settings(args, training_args),
                              **what_ran(run.trainer, training_args),
                              **({"transfer_set": run.augmented} if run.augmented else {}),
                              "resumed_from": run.checkpoint and Path(run.checkpoint).name},
                             base_model=base_model_id(args.student_model or args.teacher_model),
                             test_accuracy=metrics.get("test_accuracy"))

        save_outputs(run.trainer, metrics, run.tokenizer, record)
    return metrics


def compare_cache_speed(args: DistillArguments, data_args: DataArguments,
                        training_args: DistillationTrainingArguments,
                        steps: int = 30) -> dict[str, float]:
    """Seconds per training step (forward, backward, optimizer) with cached teacher logits
    and with the teacher on the fly, interleaved step by step so noise hits both alike."""
    import statistics
    import time

    import torch

    if not args.teacher_model or training_args.alpha >= 1.0:
        fail("comparing teacher paths needs a teacher_model and alpha < 1")
    runs = {}
    for cached in (True, False):
        variant = dataclasses.replace(args, cache_teacher_logits=cached)
        trainer = build_distillation(variant, data_args, training_args).trainer
        trainer.model.train()
        optimizer = torch.optim.AdamW(trainer.model.parameters(), lr=training_args.learning_rate)
        runs[cached] = (trainer, optimizer, iter(trainer.get_train_dataloader()))
    seconds: dict[bool, list[float]] = {True: [], False: []}
    for step in range(steps):
        for cached in (True, False) if step % 2 else (False, True):
            trainer, optimizer, batches = runs[cached]
            batch = next(batches)
            start = time.perf_counter()
            trainer.compute_loss(trainer.model, dict(batch)).backward()
            optimizer.step()
            optimizer.zero_grad()
            seconds[cached].append(time.perf_counter() - start)
    cached_s, live_s = (statistics.median(seconds[c]) for c in (True, False))
    return {"cached_step_s": cached_s, "on_the_fly_step_s": live_s,
            "speedup": live_s / cached_s, "steps": steps,
            "batch_size": training_args.per_device_train_batch_size}
