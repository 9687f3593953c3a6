"""Argument checks that run before any work starts: numeric ranges and output paths.

One table of ranges, by field name, covers every recipe's dataclasses (ours and transformers'
TrainingArguments), so a setting like `--threads 0` or `--max_samples -1` is refused in one line
instead of failing minutes later, or worse, meaning something else silently.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from slimformer.errors import fail

# name -> (low, high, low inclusive, high inclusive); None is unbounded.
RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    # benchmark
    "threads": (1, None, True, True),
    "latency_queries": (1, None, True, True),
    "warmup_queries": (0, None, True, True),
    "batch_size": (1, None, True, True),
    "throughput_batches": (1, None, True, True),
    "rounds": (3, None, True, True),
    # serve
    "port": (0, 65535, True, True),
    "workers": (1, None, True, True),
    "max_batch_size": (1, 4096, True, True),
    "max_wait_ms": (0, 1000, True, True),
    "max_queue": (1, None, True, True),
    "max_client_batch": (1, 4096, True, True),
    "max_text_chars": (1, None, True, True),
    "max_body_bytes": (64, None, True, True),
    "cache_size": (0, None, True, True),
    "max_top_k": (1, None, True, True),
    # data
    "max_samples": (1, None, True, True),
    "max_length": (4, None, True, True),  # room for [CLS], [SEP] and a word piece or two
    "max_in_scope_drop": (0, 100, True, True),
    # compression
    "min_speedup": (0, None, False, True),
    "speedup_queries": (10, None, True, True),
    "speedup_rounds": (2, None, True, True),
    "calibration_rows": (16, None, True, True),
    "calibration_max_length": (4, None, True, True),
    # training (TrainingArguments and ours)
    "per_device_train_batch_size": (1, None, True, True),
    "per_device_eval_batch_size": (1, None, True, True),
    "gradient_accumulation_steps": (1, None, True, True),
    "num_train_epochs": (0, None, False, True),
    "learning_rate": (0, None, False, True),
    "weight_decay": (0, None, True, True),
    "warmup_ratio": (0, 1, True, True),
    "dataloader_num_workers": (0, None, True, True),
    "alpha": (0, 1, True, True),
    "temperature": (0, None, False, True),
    "hidden_weight": (0, None, True, True),
    "attention_weight": (0, None, True, True),
    "steps": (1, None, True, True),
    "augment": (0, 1000, True, True),
    "head_learning_rate": (0, None, False, True),
    # optimize
    "train_batch_size": (1, None, True, True),
    "finetune_epochs": (0, None, False, True),
    "distill_epochs": (0, None, False, True),
    "prune_epochs": (0, None, False, True),
    "search_epochs": (1, None, True, True),
    "search_trials": (0, None, True, True),
    "max_accuracy_drop": (0, None, True, True),
    "budget_confidence": (0.5, 1, True, False),
    "max_latency_ms": (0, None, False, True),
    "max_size_mb": (0, None, False, True),
    # search
    "n_trials": (1, None, True, True),
    "min_epochs": (1, None, True, True),
    "max_epochs": (1, None, True, True),
    "min_learning_rate": (0, None, False, True),
    "max_learning_rate": (0, None, False, True),
    "pruner_warmup_epochs": (0, None, True, True),
    "heartbeat_interval": (0, None, True, True),
    "grace_period": (1, None, True, True),
    "max_retry": (0, None, True, True),
    "max_hidden_weight": (0, None, True, True),
    "max_attention_weight": (0, None, True, True),
}
# Sanity caps of counts that have no natural upper bound but overflow far beyond one.
CAPS: dict[str, int] = {"threads": 1024, "workers": 64}
# Fields naming a folder or file that a run writes.
OUTPUT_PATHS = ("output_dir", "dry_run_dir", "onnx_dir", "search_dir", "cache_dir")
# Fields naming a local file or folder that must exist when given.
INPUT_PATHS = ("data_file", "report")


def describe(low: Any, high: Any, low_in: bool, high_in: bool) -> str:
    if high is None:
        return f"at least {low}" if low_in else f"greater than {low}"
    left, right = ("[" if low_in else "("), ("]" if high_in else ")")
    return f"in {left}{low}, {high}{right}"


def check_range(name: str, value: Any) -> None:
    if name not in RANGES or value is None or isinstance(value, bool):
        return
    if not isinstance(value, int | float):
        fail(f"--{name} must be a number, got {value!r}")
    if not math.isfinite(value):  # NaN passes every comparison, so it passes every range
        fail(f"--{name} must be a finite number, got {value}")
    low, high, low_in, high_in = RANGES[name]
    below = low is not None and (value < low or (value == low and not low_in))
    above = high is not None and (value > high or (value == high and not high_in))
    if below or above:
        fail(f"--{name} must be {describe(low, high, low_in, high_in)}, got {value}")
    if name in CAPS and value > CAPS[name]:
        fail(f"--{name} must be at most {CAPS[name]}, got {value}")


def check_count(name: str, value: Any) -> int:
    """A whole-number argument of the Python API (threads, max_length, ...) within its range:
    a string, a float or a bool is refused as the CLI would refuse it."""
    if isinstance(value, bool) or not isinstance(value, int):
        fail(f"{name} must be a whole number, got {value!r:.60}")
    check_range(name, value)
    return value


def check_ranges(*instances: Any) -> None:
    """Every numeric field of the given dataclass instances whose name has a range."""
    for instance in instances:
        for f in dataclasses.fields(instance):
            check_range(f.name, getattr(instance, f.name, None))


def check_writable(path: str | Path, flag: str) -> None:
    """`path` can be created or written as a folder: not a file, its nearest existing parent
    a writable folder. Checked up front, not after an hour of training."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        fail(f"--{flag} {path} is a file, not a folder")
    parent = path if path.exists() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        fail(f"--{flag} {path}: {parent} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        fail(f"--{flag} {path}: cannot write in {parent} ({err.strerror or err})")


def check_paths(*instances: Any, inputs: bool = True) -> None:
    for instance in instances:
        for f in dataclasses.fields(instance):
            value = getattr(instance, f.name, None)
            if not value or not isinstance(value, str | os.PathLike):
                continue
            if f.name in OUTPUT_PATHS:
                check_writable(value, f.name)
            elif inputs and f.name in INPUT_PATHS and not Path(value).exists():
                fail(f"--{f.name} {value}: no such file or folder")


def check_arguments(*instances: Any, inputs: bool = True) -> None:
    """Ranges and output paths; input paths too unless `inputs` is False (a config parsed
    before the steps that make its inputs have run)."""
    check_ranges(*instances)
    check_paths(*instances, inputs=inputs)
