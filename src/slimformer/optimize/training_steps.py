"""The optimize run's training and compression steps: the teacher, each student, each model's
compressed variants, and the Trainer settings they share."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from slimformer.data.args import DataArguments
from slimformer.errors import fail
from slimformer.optimize.args import OptimizeArguments
from slimformer.optimize.steps import Step
from slimformer.training.run_folder import data_identity

logger = logging.getLogger(__name__)

SEARCH_STEP = "search"
# What the search may set for the students, with the run's own settings as fallback.
SEARCHED = ("alpha", "temperature", "learning_rate", "hidden_weight", "attention_weight")


def distillation_settings(args: OptimizeArguments, run: Path, searched: bool) -> dict[str, Any]:
    """The students' settings: the search's best where it ran, else the run's own."""
    settings = {key: args.setting(key) for key in SEARCHED if key != "learning_rate"}
    settings["learning_rate"] = args.setting("distill_learning_rate") or args.learning_rate
    settings["soft_loss"] = args.setting("soft_loss")
    if searched:
        best = yaml.safe_load((run / SEARCH_STEP / "best_params.yaml").read_text())
        settings.update({key: best[key] for key in SEARCHED if key in best})
    return settings


def student_layers(spec: str) -> list[int]:
    try:
        layers = [int(x) for x in str(spec).replace(",", " ").split()]
    except ValueError:
        fail(f"a student is a list of teacher layers like '0 2 4', got {spec!r}")
    if not layers:
        fail("a student needs at least one teacher layer")
    return layers


def training_arguments(folder: Path, args: OptimizeArguments, epochs: float,
                       finetune: bool = False, **extra: Any):
    """The Trainer's settings of a step; no tqdm bar (progress lines instead: the terminal
    shows step, epoch, ETA and the validation accuracy of each epoch's end)."""
    from slimformer.training.args import DistillationTrainingArguments, FinetuneTrainingArguments

    settings = {"output_dir": str(folder), "num_train_epochs": epochs,
                "learning_rate": args.learning_rate,
                "per_device_train_batch_size": args.train_batch_size,
                "per_device_eval_batch_size": 128, "eval_strategy": "epoch",
                "save_strategy": "no", "report_to": "none", "seed": args.training_seed,
                "disable_tqdm": True, "logging_strategy": "no",
                # batches of queries of like length: CLINC150's run 3 to 30 tokens, and padding
                # each batch to its longest wasted most of a step; the 4-layer student's
                # distillation ran 1.63x the steps per second (docs/optimize.md)
                "group_by_length": True, **extra}
    if finetune:
        return FinetuneTrainingArguments(
            head_learning_rate=args.setting("head_learning_rate"), **settings)
    # every step that learns from the teacher (students, search trials, pruning) uses its term
    return DistillationTrainingArguments(**{"soft_loss": args.setting("soft_loss"), **settings})


def soft_loss_fingerprint(args: OptimizeArguments) -> dict[str, str]:
    """The teacher term for a step's fingerprint; empty for kl, so older runs' fingerprints
    (and study names) hold."""
    soft_loss = str(args.setting("soft_loss"))
    return {} if soft_loss == "kl" else {"soft_loss": soft_loss}


def teacher_step(args: OptimizeArguments, data_args: DataArguments, run: Path) -> Step:
    epochs = float(args.setting("finetune_epochs"))

    def train(folder: Path) -> None:
        from slimformer.training.finetune import finetune

        finetune(args.base_model, data_args,
                 training_arguments(folder, args, epochs, finetune=True))

    settings = {"base_model": args.base_model, "epochs": epochs, "lr": args.learning_rate,
                "seed": args.training_seed, **data_identity(data_args)}
    if args.setting("head_learning_rate"):  # (absent: older runs' fingerprints hold)
        settings["head_lr"] = args.setting("head_learning_rate")
    return Step("teacher", run / "teacher", settings, train, estimate_min=3.5 * epochs)


def student_step(spec: str, teacher: str, depends: list[str], args: OptimizeArguments,
                 data_args: DataArguments, run: Path, searched: bool = False) -> Step:
    """A student cut from the teacher, distilled with the run's settings (or, after a search,
    its best ones, read when the step runs)."""
    layers = student_layers(spec)
    epochs = float(args.setting("distill_epochs"))
    name = f"student-{len(layers)}l-{'-'.join(map(str, layers))}"

    def train(folder: Path) -> None:
        from slimformer.training.args import DistillArguments
        from slimformer.training.distill_run import distill

        chosen = distillation_settings(args, run, searched)
        logger.info("%s: %s", name, ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in chosen.items()))
        distill(DistillArguments(teacher_model=teacher, student_layers=layers,
                                 cache_dir=str(run / "cache"), augment=augment,
                                 augment_methods=methods), data_args,
                training_arguments(folder, args, epochs, **chosen))

    chosen = distillation_settings(args, run, searched=False)
    settings = {"teacher": teacher, "layers": layers, "epochs": epochs,
                "alpha": chosen["alpha"], "temperature": chosen["temperature"],
                "lr": chosen["learning_rate"], "seed": args.training_seed,
                **data_identity(data_args)}
    settings.update(soft_loss_fingerprint(args))
    # (absent when off: older runs' fingerprints hold)
    if chosen["hidden_weight"] or chosen["attention_weight"]:
        settings.update(hidden_weight=chosen["hidden_weight"],
                        attention_weight=chosen["attention_weight"])
    augment, methods = augmentation(args)
    if augment:
        settings.update(augment=augment, augment_methods=methods)
    return Step(name, run / name, settings, train, depends,
                estimate_min=2.0 * epochs * (1 + augment))


def augmentation(args: OptimizeArguments) -> tuple[int, list[str]]:
    """The students' transfer set: new queries per query, and the methods that make them."""
    from slimformer.data.augment import DEFAULT_METHODS

    return int(args.setting("augment")), list(args.augment_methods or DEFAULT_METHODS)


def compress_step(model: str, name: str, depends: list[str], args: OptimizeArguments,
                  data_args: DataArguments, threads: int, run: Path) -> Step:
    variants = list(args.setting("variants"))

    def compress(folder: Path) -> None:
        from slimformer.compression.args import CompressArguments
        from slimformer.compression.variants import make_variants

        make_variants(CompressArguments(model=model, output_dir=str(folder), variants=variants),
                      data_args, threads)

    return Step(f"compress-{name}", run / "variants" / name,
                {"model": model, "variants": variants}, compress, depends,
                estimate_min=0.7 * len(variants))
