"""CLINC150 as a `datasets.DatasetDict`, from the Hub or the authors' raw JSON, one label order.

Both sources give splits `train`/`validation`/`test`, a `text` column and an `intent`
ClassLabel whose ids are the Hub's (id 42 is `oos`), so a model trained on one copy scores
identically on the other.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import datasets
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from slimformer.errors import fail

HUB_DATASET = "clinc_oos"
CONFIGS = ("plus", "full", "small", "imbalanced")
SPLITS = ("train", "validation", "test")
TEXT_COLUMN = "text"
LABEL_COLUMN = "intent"
OOS_LABEL = "oos"
# The authors' file names per config, and their split keys per Hub split.
RAW_FILES = {
    "plus": "data_oos_plus.json",
    "full": "data_full.json",
    "small": "data_small.json",
    "imbalanced": "data_imbalanced.json",
}
RAW_SPLITS = {"train": ("train", "oos_train"), "validation": ("val", "oos_val"),
              "test": ("test", "oos_test")}


def label_names() -> list[str]:
    """The 151 intents in the Hub's label order (line i is id i)."""
    text = resources.files("slimformer.data").joinpath("clinc_labels.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def features() -> Features:
    return Features({TEXT_COLUMN: Value("string"), LABEL_COLUMN: ClassLabel(names=label_names())})


def id2label() -> dict[int, str]:
    return dict(enumerate(label_names()))


def label2id() -> dict[str, int]:
    return {name: i for i, name in enumerate(label_names())}


def oos_id() -> int:
    return label2id()[OOS_LABEL]


def load_clinc(
    data_file: str | Path | None = None,
    config: str | None = "plus",
    *,
    max_samples: int | None = None,
) -> DatasetDict:
    """CLINC150 from a local raw JSON file (or folder holding it), or from the Hub when None.

    `max_samples` keeps the first N rows of each split after a fixed shuffle (for quick runs).
    """
    from slimformer.checks import check_count

    if max_samples is not None:
        check_count("max_samples", max_samples)
    if data_file is not None and not isinstance(data_file, str | Path):
        fail(f"data_file must be a path, got {type(data_file).__name__}")
    config = config or "plus"
    if config not in CONFIGS:
        fail(f"unknown CLINC150 config {config!r}; choose one of {', '.join(CONFIGS)}")
    dataset = load_raw_json(data_file, config) if data_file else load_from_hub(config)
    validate_clinc(dataset)
    return keep_samples(dataset, max_samples)


def keep_samples(dataset: DatasetDict, max_samples: int | None) -> DatasetDict:
    """The first N rows of each split after a fixed shuffle (None: all)."""
    if not max_samples:
        return dataset
    return DatasetDict({split: ds.shuffle(seed=0).select(range(min(max_samples, len(ds))))
                        for split, ds in dataset.items()})


def load_from_hub(config: str) -> DatasetDict:
    try:
        return datasets.load_dataset(HUB_DATASET, config)
    except Exception as err:  # the Hub raises many types; the user needs one sentence
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        fail(
            f"could not load {HUB_DATASET!r} ({config}) from the Hugging Face Hub ({reason}); "
            "offline, pass --data_file path/to/data_oos_plus.json (the authors' raw JSON)"
        )


def resolve_raw_file(data_file: str | Path, config: str) -> Path:
    path = Path(data_file)
    if path.is_dir():
        path = path / RAW_FILES[config]
    if not path.is_file():
        fail(f"CLINC150 data file not found: {path}")
    return path


def read_raw_json(path: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        fail(f"malformed JSON in {path}: {err.msg} at line {err.lineno}, column {err.colno}")
    except UnicodeDecodeError:
        fail(f"{path} is not a UTF-8 text file")
    if not isinstance(content, dict):
        fail(f"{path} must hold a JSON object of splits, like the authors' data_oos_plus.json")
    return content


def raw_split_rows(content: dict[str, Any], split: str, path: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key in RAW_SPLITS[split]:
        if key not in content:
            fail(f"{path} has no split {key!r} (needed for {split!r}); it has: "
                 f"{', '.join(sorted(content)) or 'nothing'}")
        for i, row in enumerate(content[key]):
            if (not isinstance(row, list | tuple) or len(row) != 2
                    or not all(isinstance(x, str) for x in row)):
                fail(f"{path}: row {i} of split {key!r} is not a [text, intent] pair: {row!r:.80}")
            rows.append((row[0], row[1]))
    return rows


def load_raw_json(data_file: str | Path, config: str = "plus") -> DatasetDict:
    """The authors' raw JSON (`[text, intent]` pairs per split) with the Hub's label ids."""
    path = resolve_raw_file(data_file, config)
    content = read_raw_json(path)
    ids = label2id()
    splits = {}
    for split in SPLITS:
        rows = raw_split_rows(content, split, path)
        unknown = sorted({intent for _, intent in rows} - ids.keys())
        if unknown:
            fail(f"{path}: unknown intent name(s) in split {split!r}: {', '.join(unknown[:5])}")
        splits[split] = Dataset.from_dict(
            {TEXT_COLUMN: [t for t, _ in rows], LABEL_COLUMN: [ids[i] for _, i in rows]},
            features=features(),
        )
    return DatasetDict(splits)


def validate_clinc(dataset: DatasetDict) -> None:
    """Check splits, columns and label order; a model's id2label depends on the last."""
    missing = [s for s in SPLITS if s not in dataset]
    if missing:
        fail(f"dataset has no split(s) {', '.join(missing)}; it has {', '.join(dataset) or 'none'}")
    for split in SPLITS:
        columns = set(dataset[split].column_names)
        if not {TEXT_COLUMN, LABEL_COLUMN} <= columns:
            fail(f"split {split!r} has columns {sorted(columns)}; expected "
                 f"{TEXT_COLUMN!r} and {LABEL_COLUMN!r}")
        if len(dataset[split]) == 0:
            fail(f"split {split!r} has no rows")
        label = dataset[split].features[LABEL_COLUMN]
        if not isinstance(label, ClassLabel) or list(label.names) != label_names():
            fail(f"split {split!r}: column {LABEL_COLUMN!r} is not CLINC150's 151-intent "
                 "ClassLabel in the Hub's order")


def tokenize(dataset: DatasetDict | Dataset, tokenizer: Any, max_length: int = 128):
    """Tokenize `text` (no padding: the collator pads per batch) and name the label `labels`."""
    def encode(batch: dict[str, list]) -> dict[str, list]:
        return tokenizer(batch[TEXT_COLUMN], truncation=True, max_length=max_length)

    encoded = dataset.map(encode, batched=True, desc="tokenize")
    return encoded.rename_column(LABEL_COLUMN, "labels")


def label_config(names: list[str] | None = None) -> dict[str, Any]:
    """Keyword arguments for a model config: num_labels, id2label and label2id (CLINC150's
    labels unless `names` are given)."""
    names = list(names) if names is not None else label_names()
    return {"num_labels": len(names), "id2label": dict(enumerate(names)),
            "label2id": {name: i for i, name in enumerate(names)}}
