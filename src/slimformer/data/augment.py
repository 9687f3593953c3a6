"""A transfer set for distillation: extra queries made from the training split, labelled by the
teacher alone.

On the training queries a well-trained teacher is nearly one-hot, so its soft labels add little
to the hard labels. On perturbed queries (words dropped, masked, swapped, replaced by a
neighbour, cut to an n-gram, two queries spliced) it is unsure, and that is what the student has
to learn (Tang et al. 2019, "Distilling Task-Specific Knowledge from BERT into Simple Neural
Networks"; Jiao et al. 2020, TinyBERT). The new rows carry no hard label: `LABELLED` is 0 for
them, and the distillation loss leaves them out of its label term.

Only the training split is augmented, from nothing outside the machine. The result depends on
the seed alone: each new query draws from a generator seeded by (seed, row, copy), so it does
not depend on the order or batching of the work. An augmented query is never empty.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from datasets import Dataset, Value

from slimformer.data.clinc import LABEL_COLUMN, TEXT_COLUMN
from slimformer.errors import fail

logger = logging.getLogger(__name__)

LABELLED = "labelled"  # 1: a query of the data with its label; 0: an augmented one
METHODS = ("dropout", "mask", "swap", "ngram", "neighbour", "splice")
DEFAULT_METHODS = METHODS
TRIES = 8  # draws before a query that will not change is left out


@dataclass(frozen=True)
class AugmentSettings:
    per_query: int = 0  # new queries per training query (0: none)
    methods: tuple[str, ...] = DEFAULT_METHODS
    seed: int = 42
    rate: float = 0.15  # share of words each word-level method touches
    mask_token: str = "[UNK]"
    # word -> its nearest words in the teacher's input-embedding space (for "neighbour")
    neighbours: dict[str, list[str]] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        check_augment(self.per_query, self.methods, self.rate)


def check_augment(per_query: int, methods: Sequence[str], rate: float = 0.15) -> None:
    if isinstance(per_query, bool) or not isinstance(per_query, int) or per_query < 0:
        fail(f"--augment must be a whole number of new queries per query (0 or more), "
             f"got {per_query!r}")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        fail(f"unknown augmentation method(s) {', '.join(unknown)}; choose from "
             f"{', '.join(METHODS)}")
    if per_query and not methods:
        fail("--augment_methods is empty: name at least one method")
    if not 0 < rate < 1:
        fail(f"the augmentation rate must be in (0, 1), got {rate}")


def touched(rng: np.random.Generator, count: int, rate: float) -> np.ndarray:
    """Which of `count` words a word-level method changes: each with `rate`, at least one."""
    chosen = rng.random(count) < rate
    if not chosen.any():
        chosen[rng.integers(count)] = True
    return chosen


def dropout(words: list[str], rng: np.random.Generator, settings: AugmentSettings,
            **_: Any) -> list[str]:
    if len(words) < 2:
        return words
    drop = touched(rng, len(words), settings.rate)
    kept = [w for w, d in zip(words, drop) if not d]
    return kept or [words[int(rng.integers(len(words)))]]


def mask(words: list[str], rng: np.random.Generator, settings: AugmentSettings,
         **_: Any) -> list[str]:
    chosen = touched(rng, len(words), settings.rate)
    return [settings.mask_token if c else w for w, c in zip(words, chosen)]


def swap(words: list[str], rng: np.random.Generator, settings: AugmentSettings,
         **_: Any) -> list[str]:
    if len(words) < 2:
        return words
    words = list(words)
    i = int(rng.integers(len(words) - 1))
    words[i], words[i + 1] = words[i + 1], words[i]
    return words


def ngram(words: list[str], rng: np.random.Generator, settings: AugmentSettings,
          **_: Any) -> list[str]:
    """A random contiguous n-gram, n from 1 to 5, shorter than the query (Tang et al.)."""
    if len(words) < 2:
        return words
    n = int(rng.integers(1, min(5, len(words) - 1) + 1))
    start = int(rng.integers(len(words) - n + 1))
    return words[start:start + n]


def neighbour(words: list[str], rng: np.random.Generator, settings: AugmentSettings,
              **_: Any) -> list[str]:
    """Words replaced by one of their nearest neighbours (words without any are kept)."""
    known = [i for i, w in enumerate(words) if settings.neighbours.get(w.lower())]
    if not known:
        return words
    words = list(words)
    chosen = touched(rng, len(known), settings.rate)
    for i, c in zip(known, chosen):
        if c:
            options = settings.neighbours[words[i].lower()]
            words[i] = options[int(rng.integers(len(options)))]
    return words


def splice(words: list[str], rng: np.random.Generator, settings: AugmentSettings,
           other: list[str] | None = None, **_: Any) -> list[str]:
    """The first half of this query, then the second half of a query of another label: text
    that belongs to neither intent, a pseudo out-of-scope query."""
    if not other:
        return words
    cut, other_cut = max(1, len(words) // 2), len(other) // 2
    return words[:cut] + other[other_cut:]


AUGMENTERS = {"dropout": dropout, "mask": mask, "swap": swap, "ngram": ngram,
              "neighbour": neighbour, "splice": splice}


def augment_query(row: int, copy: int, words: list[str], label: int, texts: list[list[str]],
                  labels: np.ndarray, settings: AugmentSettings) -> tuple[str, str] | None:
    """One new query from row `row` (its `copy`-th), with the method that made it; None when
    no draw changed it."""
    rng = np.random.default_rng([settings.seed, row, copy])
    for _ in range(TRIES):
        method = settings.methods[int(rng.integers(len(settings.methods)))]
        other = None
        if method == "splice":
            pick = int(rng.integers(len(texts)))
            other = texts[pick] if labels[pick] != label else None
        new = AUGMENTERS[method](words, rng, settings, other=other)
        text = " ".join(new).strip()
        if text and new != words:
            return text, method
    return None


def augment_split(train: Dataset, settings: AugmentSettings) -> tuple[Dataset, dict[str, Any]]:
    """The training split with `settings.per_query` new queries per query appended (column
    `LABELLED` 0, the source query's label kept only so the column type holds), and a record
    of what was added."""
    if LABELLED in train.column_names:
        fail("the training split is already augmented")
    labelled = train.add_column(LABELLED, [1] * len(train)).cast_column(LABELLED, Value("int8"))
    if not settings.per_query:
        return labelled, {}
    texts = [str(t).split() for t in train[TEXT_COLUMN]]
    labels = np.asarray(train[LABEL_COLUMN])
    new_texts, new_labels, methods = [], [], Counter()
    for row, (words, label) in enumerate(zip(texts, labels)):
        if not words:
            continue
        for copy in range(settings.per_query):
            made = augment_query(row, copy, words, int(label), texts, labels, settings)
            if made is not None:
                new_texts.append(made[0])
                new_labels.append(int(label))
                methods[made[1]] += 1
    added = Dataset.from_dict({TEXT_COLUMN: new_texts, LABEL_COLUMN: new_labels,
                               LABELLED: [0] * len(new_texts)}, features=labelled.features)
    from datasets import concatenate_datasets

    record = {"per_query": settings.per_query, "methods": list(settings.methods),
              "seed": settings.seed, "rate": settings.rate, "rows": len(train),
              "added": len(new_texts), "by_method": dict(sorted(methods.items())),
              "neighbour_words": len(settings.neighbours)}
    logger.info("transfer set: %d training queries + %d augmented (%s)", len(train),
                len(new_texts), ", ".join(f"{k} {v}" for k, v in record["by_method"].items()))
    return concatenate_datasets([labelled, added]), record
