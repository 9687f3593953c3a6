"""The data every step reads: CLINC150 by default, or any text-classification dataset.

Whatever the source, steps get a `DatasetDict` with splits train/validation/test, a `text`
column and an `intent` ClassLabel, so training, the benchmark and the cards need not know
where the data came from. A dataset's label names are its ClassLabel's names, or its distinct
label values in sorted order; `--oos_label` names the out-of-scope label, if it has one.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, DatasetDict, Features, Value

from slimformer.data.args import DataArguments
from slimformer.data.clinc import (
    LABEL_COLUMN,
    SPLITS,
    TEXT_COLUMN,
    keep_samples,
    load_clinc,
)
from slimformer.errors import fail, first_line

logger = logging.getLogger(__name__)

# File suffix -> the `datasets` builder that reads it.
BUILDERS = {".csv": "csv", ".tsv": "csv", ".json": "json", ".jsonl": "json",
            ".parquet": "parquet"}
# Other names for a split, as datasets and folders spell them.
SPLIT_NAMES = {"train": ("train",), "validation": ("validation", "valid", "val", "dev"),
               "test": ("test",)}
HELD_OUT = 0.1  # share of train carved out for a missing validation or test split


def load_data(data_args: DataArguments) -> DatasetDict:
    """The data the arguments name, in the shared layout (see the module docstring)."""
    if data_args.dataset is None:
        return load_clinc(data_args.data_file, data_args.dataset_config,
                          max_samples=data_args.max_samples)
    if data_args.data_file:
        fail("give --dataset (any data) or --data_file (CLINC150's raw JSON), not both")
    raw = read_dataset(data_args.dataset, data_args.dataset_config)
    dataset = normalise(raw, data_args.dataset, data_args.text_column, data_args.label_column)
    check_oos_label(label_names(dataset), data_args.oos_label, data_args.dataset)
    return keep_samples(dataset, data_args.max_samples)


DEFAULT_OOS_LABEL = "oos"


def check_oos_label(names: list[str], oos_label: str, source: str) -> None:
    """An --oos_label the data does not have is refused (a typo would silently turn the
    fallback and the out-of-scope metrics off); the default one may be absent: such data
    has no out-of-scope label, and runs without a fallback, saying so."""
    if oos_label in names:
        return
    shown = ", ".join(repr(n) for n in names[:8]) + (" ..." if len(names) > 8 else "")
    if oos_label != DEFAULT_OOS_LABEL:
        fail(f"--oos_label {oos_label!r} is not a label of {source} (its labels: {shown}); "
             "give the out-of-scope label as the data spells it, or leave --oos_label out "
             "for data without one")
    logger.warning("%s has no label %r: no out-of-scope fallback and no out-of-scope recall "
                   "(name the data's out-of-scope label with --oos_label)", source, oos_label)


def read_dataset(source: str, config: str | None) -> DatasetDict:
    path = Path(source)
    if path.is_dir():
        return read_files(split_files(path))
    if path.suffix.lower() in BUILDERS:
        if not path.is_file():
            fail(f"data file not found: {path}")
        return read_files({"train": path})
    try:
        loaded = datasets.load_dataset(source, config)
    except Exception as err:  # the Hub and builders raise many types; one sentence is enough
        fail(f"could not load dataset {source!r}"
             f"{f' ({config})' if config else ''}: {first_line(err)}", err)
    if not isinstance(loaded, DatasetDict):
        fail(f"dataset {source!r} has no splits")
    return loaded


def split_files(folder: Path) -> dict[str, Path]:
    """train/validation/test files in a folder, by name (train.csv, dev.jsonl, ...)."""
    found: dict[str, Path] = {}
    for file in sorted(folder.iterdir()):
        suffix = file.suffix.lower()
        for split, names in SPLIT_NAMES.items():
            if suffix in BUILDERS and file.stem.lower() in names and split not in found:
                found[split] = file
    if "train" not in found:
        fail(f"{folder} has no train file; expected train.csv (or .tsv/.json/.jsonl/.parquet) "
             "and optionally validation.* and test.*")
    return found


def read_files(files: dict[str, Path]) -> DatasetDict:
    suffixes = {BUILDERS[path.suffix.lower()] for path in files.values()}
    if len(suffixes) > 1:
        fail(f"the split files mix formats ({', '.join(str(p) for p in files.values())}); "
             "use one format")
    builder = suffixes.pop()
    options: dict[str, Any] = {}
    if any(path.suffix.lower() == ".tsv" for path in files.values()):
        options["delimiter"] = "\t"
    try:
        return datasets.load_dataset(builder, data_files={s: str(p) for s, p in files.items()},
                                     **options)
    except Exception as err:  # a malformed file: name it, not the builder's internals
        fail(f"cannot read {', '.join(str(p) for p in files.values())}: {first_line(err)}", err)


def rename_splits(raw: DatasetDict) -> DatasetDict:
    renamed = {}
    for split, names in SPLIT_NAMES.items():
        name = next((n for n in names if n in raw), None)
        if name is not None:
            renamed[split] = raw[name]
    if "train" not in renamed:
        fail(f"the dataset has no train split; it has {', '.join(raw) or 'none'}")
    return DatasetDict(renamed)


def label_names_of(raw: DatasetDict, column: str) -> list[str]:
    feature = raw["train"].features[column]
    if isinstance(feature, ClassLabel):
        return list(feature.names)
    values = set()
    for split in raw.values():
        values.update(split.unique(column))
    if None in values:
        fail(f"column {column!r} has empty labels; every row needs one")
    return sorted(str(value) for value in values)


def normalise(raw: DatasetDict, source: str, text_column: str,
              label_column: str) -> DatasetDict:
    """`text` + `intent` ClassLabel in splits train/validation/test (missing ones carved out
    of train with a fixed seed)."""
    raw = rename_splits(raw)
    for split, part in raw.items():
        missing = [c for c in (text_column, label_column) if c not in part.column_names]
        if missing:
            fail(f"{source}: split {split!r} has no column {missing[0]!r}; it has "
                 f"{', '.join(part.column_names)} (set --text_column / --label_column)")
    names = label_names_of(raw, label_column)
    if len(names) < 2:
        fail(f"{source}: column {label_column!r} holds {len(names)} label(s); a classifier "
             "needs at least 2")
    class_label = ClassLabel(names=names)
    is_class_label = isinstance(raw["train"].features[label_column], ClassLabel)

    def encode(batch: dict[str, list]) -> dict[str, list]:
        labels = batch[label_column]
        if not is_class_label:
            labels = [class_label.str2int(str(label)) for label in labels]
        if any(label is None or label < 0 for label in labels):
            fail(f"{source}: column {label_column!r} has unlabelled rows (-1); drop them or "
                 "use a split with labels")
        return {TEXT_COLUMN: [str(t) for t in batch[text_column]], LABEL_COLUMN: labels}

    schema = Features({TEXT_COLUMN: Value("string"), LABEL_COLUMN: class_label})
    parts = {split: part.map(encode, batched=True, remove_columns=part.column_names,
                             features=schema, desc=f"read {split}")
             for split, part in raw.items()}
    return DatasetDict(carve_missing(parts, source))


def carve_missing(parts: dict[str, Any], source: str) -> dict[str, Any]:
    for split in ("test", "validation"):
        if split in parts:
            continue
        if len(parts["train"]) < 20:
            fail(f"{source} has no {split} split and too few train rows to hold some out")
        logger.info("%s has no %s split: holding out %.0f%% of train for it (seed 0)",
                    source, split, 100 * HELD_OUT)
        halves = parts["train"].train_test_split(test_size=HELD_OUT, seed=0)
        parts["train"], parts[split] = halves["train"], halves["test"]
    return {split: parts[split] for split in SPLITS}


def label_names(dataset: DatasetDict) -> list[str]:
    """The label names of data from `load_data`, by id."""
    return list(dataset["train"].features[LABEL_COLUMN].names)


def oos_id_of(names: list[str], oos_label: str | None) -> int | None:
    """The out-of-scope label's id, None when the data has none."""
    return names.index(oos_label) if oos_label in names else None


def check_label_names(labels: list[str] | None, expected: list[str], who: str) -> None:
    """A model's labels by id must be the data's, or its accuracy means nothing (None or
    generic LABEL_i names are taken on trust: an untrained head)."""
    if labels is None:
        return
    if len(labels) != len(expected):
        fail(f"{who} has {len(labels)} labels; the data has {len(expected)}")
    generic = all(label == f"LABEL_{i}" for i, label in enumerate(labels))
    if not generic and list(labels) != list(expected):
        wrong = next(i for i, (a, b) in enumerate(zip(labels, expected)) if a != b)
        fail(f"{who}: label id {wrong} is {labels[wrong]!r}, the data's is {expected[wrong]!r} "
             "(its id2label is not in the data's label order)")
