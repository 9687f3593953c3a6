"""A training run's output folder: whose it is, and whether a checkpoint in it may be resumed."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from transformers import (
    TrainingArguments,
)
from transformers.trainer_utils import get_last_checkpoint

from slimformer.data.args import DataArguments
from slimformer.errors import fail
from slimformer.files import output_step

RUN_FILE = "slimformer-run.json"  # the step, base model and data a training run started with


def data_identity(data_args: DataArguments) -> dict[str, Any]:
    source = str(Path(data_args.data_file).resolve()) if data_args.data_file else "hub"
    config = data_args.dataset_config or ("plus" if data_args.dataset is None else None)
    identity = {"data": source, "config": config,
                "max_samples": data_args.max_samples, "max_length": data_args.max_length}
    if data_args.dataset is not None:  # any data: which, and how its columns are read
        path = Path(data_args.dataset)
        identity.update(data=str(path.resolve()) if path.exists() else data_args.dataset,
                        text_column=data_args.text_column,
                        label_column=data_args.label_column, oos_label=data_args.oos_label)
    return identity


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


def check_owner(args: TrainingArguments, step: str) -> None:
    """Refuse a non-empty output folder that `step` did not write (unless told to replace it)."""
    out = Path(args.output_dir)
    if not out.is_dir() or not any(out.iterdir()) or args.overwrite_output_dir:
        return
    if step not in (output_step(out), (read_run(out) or {}).get("step")):
        fail(f"output folder {out} already holds files that step {step!r} did not write; "
             "choose another --output_dir, or pass --overwrite_output_dir true to replace them")


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
    check_owner(args, step)
    run = read_run(out)
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


@contextmanager
def removed_on_failure(args: TrainingArguments) -> Iterator[None]:
    """A run that fails removes the output folder it made, unless the folder holds a
    checkpoint to resume from (a folder that was there before is never touched)."""
    out = Path(args.output_dir)
    made = not out.is_dir() or not any(out.iterdir())
    try:
        yield
    except BaseException:
        if made and args.process_index == 0 and out.is_dir() and not get_last_checkpoint(str(out)):
            shutil.rmtree(out, ignore_errors=True)
        raise
