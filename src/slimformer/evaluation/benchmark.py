"""Side-by-side benchmark of classifier variants: accuracy, size, latency, throughput, memory.

Accuracy is measured in this process. Latency, throughput and peak memory are measured with
each variant alone in a process of its own, the processes taking turns in rounds
(`slimformer.serving.timing`), because variants sharing a process fight over its thread pools. The
report records how busy the machine was and marks timings that cannot be trusted."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from slimformer.checks import check_ranges
from slimformer.data.args import DataArguments
from slimformer.data.clinc import LABEL_COLUMN, OOS_LABEL, TEXT_COLUMN
from slimformer.data.dataset import check_label_names, load_data, oos_id_of
from slimformer.data.metrics import NO_OOS, clinc_scores
from slimformer.errors import fail
from slimformer.evaluation.environment import environment
from slimformer.evaluation.paired import pack_right
from slimformer.evaluation.report import write_report
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.evaluation.settings import BenchmarkSettings
from slimformer.serving.fallback import FallbackRule, rule_for_split
from slimformer.serving.registry import load_variant
from slimformer.serving.timing import MAX_SPREAD, load_average, time_rounds
from slimformer.serving.variant import Variant, scratch_dir


def set_threads(threads: int) -> None:
    """Pin intra-op threads for torch (if loaded) and for BLAS/OpenMP in child processes
    (the range was checked with the other settings)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def split_labels(split: Dataset) -> list[str]:
    return list(split.features[LABEL_COLUMN].names)


def answers(logits: np.ndarray, split: Dataset, rule: FallbackRule | None,
            fitted_here: bool = False) -> dict[str, np.ndarray]:
    """The model's label ids by argmax, and with the fallback rule applied (when there is
    one), worked out once for the scores and the stored answers; `fitted_here`: the split is
    the one the rule was fitted on (validation)."""
    found = {"argmax": logits.argmax(axis=-1)}
    if rule is not None:
        labels = np.asarray(split[LABEL_COLUMN])
        found["with_fallback"] = (rule.predict_fitted_ids(logits, labels) if fitted_here
                                  else rule.predict_ids(logits))
    return found


def split_scores(ids: dict[str, np.ndarray], split: Dataset, oos_label: str | None
                 ) -> dict[str, Any]:
    """Scores of the argmax answers, and of the fallback's (under "with_fallback")."""
    oos_id = oos_id_of(split_labels(split), oos_label)
    oos_id = NO_OOS if oos_id is None else oos_id
    labels = np.asarray(split[LABEL_COLUMN])
    found = clinc_scores(ids["argmax"], labels, oos_id)
    if "with_fallback" in ids:
        found["with_fallback"] = clinc_scores(ids["with_fallback"], labels, oos_id)
    return found


def right_answers(ids: dict[str, np.ndarray], split: Dataset) -> dict[str, str]:
    """Each row right or wrong, by argmax and with the fallback, packed: what the paired
    intervals between variants are computed from (paired.py)."""
    labels = np.asarray(split[LABEL_COLUMN])
    return {kind: pack_right(found == labels) for kind, found in ids.items()}


def measure_accuracy(variant: Variant, test: Dataset, batch_size: int,
                     oos_label: str | None = OOS_LABEL,
                     validation: Dataset | None = None,
                     data_args: DataArguments | None = None) -> dict[str, Any]:
    """Test scores (and validation scores under "validation"), without and with the variant's
    out-of-scope fallback: the rule stored with it, or else one fitted here on validation
    (with `data_args`' fallback settings, the defaults without)."""
    logits = {name: variant.logits(split[TEXT_COLUMN], batch_size,
                                   progress=f"{name} accuracy {variant.name}")
              for name, split in (("test", test), ("validation", validation))
              if split is not None}
    rule, source = variant.fallback, "stored with the model"
    if rule is None and validation is not None:
        settings = data_args or DataArguments(oos_label=oos_label or OOS_LABEL)
        rule = rule_for_split(logits["validation"], validation, settings)
        source = "fitted by the benchmark on validation"
    test_ids = answers(logits["test"], test, rule)
    row = split_scores(test_ids, test, oos_label)
    row["test_right"] = right_answers(test_ids, test)
    if validation is not None:
        validation_ids = answers(logits["validation"], validation, rule, fitted_here=True)
        row["validation"] = {**split_scores(validation_ids, validation, oos_label),
                             "right": right_answers(validation_ids, validation),
                             "rows": len(validation)}
    if rule is not None:
        row["fallback"] = {**rule.summary(), "source": source, "rule": rule.describe()}
    return row


def pick_queries(test: Dataset, count: int, seed: int) -> list[str]:
    """`count` distinct test queries in a fixed random order."""
    unique = list(dict.fromkeys(test[TEXT_COLUMN]))
    if count > len(unique):
        fail(f"asked for {count} distinct queries; the test split has {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    return [unique[i] for i in order[:count]]


def check_query_counts(test: Dataset, settings: BenchmarkSettings) -> None:
    """The split holds enough distinct queries for the warm-up and timed queries."""
    distinct = len(set(test[TEXT_COLUMN]))
    wanted = settings.warmup_queries + settings.latency_queries
    if wanted > distinct:
        fail(f"asked for {wanted} distinct queries (--warmup_queries + --latency_queries); "
             f"the test split has {distinct}")


def speed_batches(test: Dataset, settings: BenchmarkSettings
                  ) -> tuple[list[list[str]], list[list[str]], list[list[str]]]:
    """Warm-up and latency queries (batch 1, distinct) and the throughput batches."""
    queries = pick_queries(test, settings.warmup_queries + settings.latency_queries,
                           settings.seed)
    warmup = [[q] for q in queries[:settings.warmup_queries]]
    latency = [[q] for q in queries[settings.warmup_queries:]]
    rows = pick_queries(test, min(len(set(test[TEXT_COLUMN])),
                                  settings.batch_size * settings.throughput_batches),
                        settings.seed + 1)
    throughput = [rows[i:i + settings.batch_size] for i in range(0, len(rows),
                                                                 settings.batch_size)]
    return warmup, latency, throughput


def timing_notes(latency: dict[str, Any], throughput: dict[str, Any],
                 machine: dict[str, Any]) -> list[str]:
    """Why a variant's timings cannot be trusted (empty: they can)."""
    notes = list(machine["busy_reasons"])
    if latency["spread"] > MAX_SPREAD:
        notes.append(f"round p50s differ by {100 * latency['spread']:.0f}% "
                     f"(> {100 * MAX_SPREAD:.0f}%)")
    if throughput and throughput["spread"] > MAX_SPREAD:
        notes.append(f"round throughputs differ by {100 * throughput['spread']:.0f}%")
    return notes


def measure_speed(variants: list[Variant], test: Dataset, settings: BenchmarkSettings,
                  load_before: list[float]) -> dict[str, Any]:
    """Latency, throughput and memory per variant, each in its own process, in rounds."""
    scratch: list[Path] = []
    folders = {}
    for variant in variants:
        folder = scratch_dir() if variant.path is None else None
        if folder is not None:
            scratch.append(folder)
        folders[variant.name] = variant.reloadable(folder)
    warmup, latency, throughput = speed_batches(test, settings)
    try:
        result = time_rounds(folders, settings.threads, settings.rounds, warmup, latency,
                             throughput, memory=settings.measure_memory,
                             load_before=load_before)
    finally:
        for folder in scratch:  # ours: the in-memory variants saved for their processes
            shutil.rmtree(folder, ignore_errors=True)
    return {"result": result, "throughput_rows": sum(len(b) for b in throughput)}


def check_variants(variants: list[Variant], labels: list[str]) -> None:
    if not variants:
        fail("no variants to benchmark")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        fail(f"variant names must be unique: {', '.join(names)}")
    for variant in variants:
        check_label_names(variant.labels, labels, f"variant {variant.name!r}")


def benchmark_variants(variants: list[Variant], test: Dataset,
                       settings: BenchmarkSettings | None = None,
                       validation: Dataset | None = None,
                       oos_label: str | None = OOS_LABEL,
                       data_args: DataArguments | None = None) -> BenchmarkReport:
    """Every figure for every variant; returns the report.

    Accuracy in this process; latency, throughput and memory per variant in its own process.
    With `validation`, each row also holds its scores on that split under "validation" (what a
    choice between variants may rest on; the test split is only reported).
    """
    settings = settings or BenchmarkSettings()
    check_ranges(settings)
    check_query_counts(test, settings)
    load_before = load_average()
    check_variants(variants, split_labels(test))
    set_threads(settings.threads)
    results = {v.name: {**v.info(), "size_mb": v.size_mb()} for v in variants}
    for variant in variants:
        results[variant.name].update(measure_accuracy(variant, test, settings.batch_size,
                                                      oos_label, validation, data_args))
    speed = measure_speed(variants, test, settings, load_before)
    result = speed["result"]
    for name, row in results.items():
        latency, throughput = result.latency_ms[name], result.throughput_qps.get(name, {})
        row["latency_ms"] = latency
        row["throughput_qps"] = throughput.get("qps")
        row["throughput"] = throughput
        if name in result.peak_memory_mb:
            row["peak_memory_mb"] = result.peak_memory_mb[name]
        row["pids"] = sorted({t.pid for t in result.turns if t.variant == name})
        notes = timing_notes(latency, throughput, result.machine)
        row["timing_reliable"] = not notes
        row["timing_notes"] = notes
    timing = {"method": "per-process rounds", "rounds": settings.rounds,
              "parent_pid": os.getpid(), "throughput_rows": speed["throughput_rows"],
              "turns": [asdict(t) for t in result.turns]}
    return BenchmarkReport(environment=environment(settings.threads, result.machine),
                           settings=asdict(settings), test_rows=len(test), timing=timing,
                           variants=list(results.values()))


def data_description(data_args: DataArguments, data: Any) -> dict[str, Any]:
    """What the report was measured on, for the report and the cards."""
    names = split_labels(data["test"])
    if data_args.dataset is None:
        config = data_args.dataset_config or "plus"
        return {"dataset": "clinc_oos", "dataset_config": config, "clinc": True,
                "name": f"CLINC150 ({config})", "labels": len(names),
                "oos_label": OOS_LABEL, "oos_id": names.index(OOS_LABEL)}
    hub = not Path(data_args.dataset).exists()
    oos_id = oos_id_of(names, data_args.oos_label)
    return {"dataset": data_args.dataset if hub else None,
            "dataset_config": data_args.dataset_config, "clinc": False,
            "name": data_args.dataset if hub else Path(data_args.dataset).name,
            "labels": len(names), "example_label": names[0],
            "oos_label": None if oos_id is None else data_args.oos_label, "oos_id": oos_id}


def benchmark_folders(specs: list[str], data_args: DataArguments, settings: BenchmarkSettings,
                      output_dir: str | Path, baseline: str | None = None,
                      with_validation: bool = False, overwrite: bool = False
                      ) -> dict[str, Path]:
    """Load each `NAME=FOLDER[@KIND]`, benchmark them side by side on the test split (and the
    validation split's accuracy too, if asked) and write the reports to `output_dir`; returns
    their paths. A non-empty `output_dir` that an earlier benchmark did not write is refused
    before any work (`overwrite` allows it); the reports are written whole or not at all."""
    from slimformer.files import check_target, staged_folder, write_marker

    check_target(output_dir, "benchmark", overwrite, "--overwrite true")
    data = load_data(data_args)
    check_query_counts(data["test"], settings)
    variants = [load_variant(spec, threads=settings.threads) for spec in specs]
    report = benchmark_variants(variants, data["test"], settings,
                                data["validation"] if with_validation else None,
                                data_args.oos_label, data_args)
    report.data = data_description(data_args, data)
    with staged_folder(output_dir, overwrite, "benchmark", "--overwrite true") as stage:
        written = write_report(report, stage, baseline)
        write_marker(stage, "benchmark")
    return {key: Path(output_dir) / path.name for key, path in written.items()}
