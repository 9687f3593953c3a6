"""The whole chain in one run: teacher, students, compressed variants, one side-by-side
benchmark, the choice within budget, reports and a model card for every variant.

    run folder/
      teacher/                 fine-tuned teacher (unless one was given)
      student-3l-1-3-5/ ...    distilled students, layers cut from the teacher
      variants/MODEL/...       compressed variants of each model
      benchmark/               report.json/.md/.png of every variant (per-process timing)
      hub/                     each variant's repository as a push would publish it
      report.md, report.json, report.png (Pareto front, chosen variant marked), best.json
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from slimformer.checks import check_ranges
from slimformer.data.args import DataArguments
from slimformer.errors import fail
from slimformer.evaluation.report_data import BenchmarkReport, load_report
from slimformer.evaluation.settings import BenchmarkSettings
from slimformer.files import check_target, write_marker
from slimformer.optimize.args import PROFILES, OptimizeArguments
from slimformer.optimize.candidates import prune_step, search_step, trim_step
from slimformer.optimize.report import write_optimize_report
from slimformer.optimize.select import Budget, choose
from slimformer.optimize.steps import Step, run_steps
from slimformer.optimize.training_steps import (
    SEARCH_STEP,
    augmentation,
    compress_step,
    student_layers,
    student_step,
    teacher_step,
)
from slimformer.training.run_folder import data_identity

logger = logging.getLogger(__name__)
STEP = "optimize"


def check_arguments(args: OptimizeArguments) -> None:
    if args.profile not in PROFILES:
        fail(f"unknown profile {args.profile!r}; choose one of {', '.join(PROFILES)}")
    for key in ("finetune_epochs", "distill_epochs"):
        if float(args.setting(key)) <= 0:
            fail(f"--{key} must be greater than 0, got {args.setting(key)}")
    for spec in args.setting("students"):
        student_layers(spec)
    for level in args.setting("prune_levels"):
        if not 0 < float(level) < 1:
            fail(f"a pruning level is the share of heads and neurons removed, in (0, 1); "
                 f"got {level}")
    from slimformer.data.augment import check_augment

    check_augment(*augmentation(args))
    from slimformer.training.args import check_soft_loss

    check_soft_loss(args.setting("soft_loss"))
    from slimformer.compression.vocab import CHARACTER_SETS

    if args.trim_characters not in CHARACTER_SETS:
        fail(f"unknown --trim_characters {args.trim_characters!r}; choose one of "
             f"{', '.join(CHARACTER_SETS)}")
    if float(args.setting("prune_epochs")) <= 0:
        fail(f"--prune_epochs must be greater than 0, got {args.setting('prune_epochs')}")
    from slimformer.compression.passes.base import parse_chain

    for variant in args.setting("variants"):
        parse_chain(variant)


def check_architecture(args: OptimizeArguments) -> None:
    """Students and pruning need the base model's layout, trimming its tokenizer's kind:
    check them (and the student layers) before any training starts."""
    from slimformer.models.architectures import (
        architecture_of,
        check_prunable,
        check_student_layers,
    )
    from slimformer.models.loading import load_model_config

    specs, levels = args.setting("students"), args.setting("prune_levels")
    if args.trim_vocab:
        from slimformer.compression.vocab import check_trimmable, tokenizer_model_type
        from slimformer.models.aliases import resolve_model

        base = Path(resolve_model(args.teacher or args.base_model))
        if base.is_dir():  # a Hub id's tokenizer is checked when it is downloaded
            check_trimmable(tokenizer_model_type(base))
    if not (specs or levels):
        return
    config = load_model_config(args.teacher or args.base_model)
    arch = architecture_of(config, "slimformer optimize (students, pruning)")
    for spec in specs:
        layers = student_layers(spec)
        bad = [i for i in layers if not 0 <= i < config.num_hidden_layers]
        if bad:
            fail(f"student {spec!r}: layer(s) {bad} out of range; the teacher has "
                 f"{config.num_hidden_layers} layers (0..{config.num_hidden_layers - 1})")
        check_student_layers(config, layers)
    if levels:
        check_prunable(config, prune_attention=not arch.no_head_removal, prune_ffn=True)


def variant_specs(models: dict[str, str], run: Path) -> list[str]:
    """The benchmark's variants: each model (PyTorch) and every compressed folder of it, ONNX
    ones run by the lean predictor as a service would."""
    specs = []
    for name, folder in models.items():
        specs.append(f"{name}={folder}")  # pytorch, or pytorch-pruned: detected
        for variant in sorted((run / "variants" / name).glob("*")):
            if variant.is_dir() and not variant.name.startswith("."):
                kind = "onnx-lean" if any(variant.glob("*.onnx")) else None
                suffix = variant.name[len(Path(folder).name) + 1:]
                specs.append(f"{name}-{suffix}={variant}" + (f"@{kind}" if kind else ""))
    return specs


def plan(args: OptimizeArguments, data_args: DataArguments, settings: BenchmarkSettings,
         run: Path) -> tuple[list[Step], dict[str, str]]:
    """The run's steps, each with the steps it needs named (run_steps orders them), and the
    models to benchmark. Every model, however it was made, goes through the same compress
    step; each step owns its one folder."""
    steps: list[Step] = []
    made_by: dict[str, list[str]] = {}  # model -> the step that makes it (none: given)

    def add(step: Step) -> Step:
        steps.append(step)
        return step

    if args.teacher:
        from slimformer.models.aliases import resolve_model

        models = {"teacher": resolve_model(args.teacher)}
        made_by["teacher"] = []
    else:
        models = {"teacher": str(add(teacher_step(args, data_args, run)).folder)}
        made_by["teacher"] = ["teacher"]
    teacher = models["teacher"]
    before_students = list(made_by["teacher"])
    specs = list(args.setting("students"))
    if args.search_trials and specs:
        add(search_step(student_layers(specs[0]), teacher, made_by["teacher"], args,
                        data_args, run))
        before_students.append(SEARCH_STEP)
    students = []
    for spec in specs:
        step = add(student_step(spec, teacher, before_students, args, data_args, run,
                                searched=bool(args.search_trials)))
        models[step.name], made_by[step.name] = str(step.folder), [step.name]
        students.append(step.name)
    if args.trim_vocab:
        for name in list(models):
            step = add(trim_step(name, models[name], made_by[name], args, data_args, run))
            models[step.name], made_by[step.name] = str(step.folder), [step.name]
    # The teacher and every student pruned: pruned teachers fill the front between the int8
    # teacher and the students.
    for name in ["teacher", *students]:
        for level in args.setting("prune_levels"):
            needs = list(dict.fromkeys(made_by[name] + made_by["teacher"]))
            step = add(prune_step(name, models[name], teacher, float(level), needs, args,
                                  data_args, run))
            models[step.name], made_by[step.name] = str(step.folder), [step.name]
    for name, folder in models.items():
        add(compress_step(folder, name, made_by[name], args, data_args, settings.threads,
                          run))
    return steps, models


def optimize(args: OptimizeArguments, data_args: DataArguments,
             settings: BenchmarkSettings) -> dict[str, Any]:
    """Run (or resume) the chain and choose; returns the choice."""
    check_arguments(args)
    check_ranges(args, data_args, settings)
    if data_args.dataset is not None:  # other data: its files and columns, before any work
        from slimformer.data.dataset import load_data

        load_data(data_args)
    run = Path(args.output_dir)
    check_target(run, STEP, flag="another --output_dir")
    if args.teacher:  # students learn from it: a base model's random head teaches nothing
        from slimformer.models.loading import check_trained_classifier

        check_trained_classifier(args.teacher, "give it as --base_model instead, and "
                                 "optimize fine-tunes a teacher from it")
    check_architecture(args)
    run.mkdir(parents=True, exist_ok=True)
    write_marker(run, STEP)
    steps, models = plan(args, data_args, settings, run)
    benchmark_dir = run / "benchmark"

    def benchmark(folder: Path) -> None:
        from slimformer.evaluation.benchmark import benchmark_folders

        benchmark_folders(variant_specs(models, run), data_args, settings, folder, "teacher",
                          with_validation=True)

    steps.append(Step("benchmark", benchmark_dir, {"settings": vars(settings),
                                                   "data": data_identity(data_args)},
                      benchmark, [s.name for s in steps], estimate_min=3.0))
    run_steps(steps)
    report = load_report(benchmark_dir / "report.json")
    budget = Budget(args.max_accuracy_drop, args.max_latency_ms, args.max_size_mb,
                    args.budget_confidence)
    choice = choose(report, "teacher", budget)
    write_optimize_report(report, choice, budget, run)
    publish(args, report, benchmark_dir, run)
    return choice


def publish(args: OptimizeArguments, report: BenchmarkReport, benchmark_dir: Path,
            run: Path) -> None:
    """Every variant's repository with its card under run/hub; with --push, on the Hub."""
    from slimformer.hub.push_plan import plan_push
    from slimformer.hub.staging import dry_run, report_plot

    report_path = benchmark_dir / "report.json"
    plans = plan_push(report, args.namespace, args.name, report_path=report_path)
    dry_run(plans, report, run / "hub", plot=report_plot(report_path))
    if args.push:
        from slimformer.hub.push import push

        push(plans, report, plot=report_plot(report_path))
