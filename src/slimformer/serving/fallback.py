"""The out-of-scope fallback: answer `oos` when the model is not confident enough.

The rule thresholds a confidence score computed from the logits alone (so every variant kind,
the lean predictor included, applies it the same way): the largest logit among the in-scope
labels (MaxLogit, Hendrycks et al. 2022), or the largest in-scope softmax probability (Larson
et al. 2019's baseline). Below the threshold the answer is the out-of-scope label.

The threshold is fitted on the validation split only, and without looking at its out-of-scope
rows: it is the highest threshold that costs at most `max_in_scope_drop` points of in-scope
accuracy. That makes the rule independent of how many out-of-scope queries a split holds
(3% of CLINC150's validation split, 18% of its test split, unknown in production), where a
threshold that maximises validation accuracy is pulled down by the 3%. The rule lives in the
variant's config.json under `oos_fallback`, so `pipeline()` users read it from
`model.config.oos_fallback`.

This module needs numpy only: the lean predictor applies it without torch.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail

CONFIG_KEY = "oos_fallback"
SCORES = ("max_logit", "max_softmax")
DEFAULT_SCORE = "max_logit"
DEFAULT_MAX_IN_SCOPE_DROP = 0.5


def confidence(logits: np.ndarray, score: str, oos_id: int) -> np.ndarray:
    """Each row's confidence in its best in-scope label."""
    logits = np.asarray(logits, dtype=np.float64)
    if score == "max_softmax":
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        values = shifted / shifted.sum(axis=-1, keepdims=True)
    elif score == "max_logit":
        values = logits.copy()
    else:
        fail(f"unknown fallback score {score!r}; choose one of {', '.join(SCORES)}")
    values[:, oos_id] = -np.inf
    return values.max(axis=-1)


@dataclass
class FallbackRule:
    threshold: float
    oos_id: int
    label: str = "oos"
    score: str = DEFAULT_SCORE
    max_in_scope_drop: float = DEFAULT_MAX_IN_SCOPE_DROP
    fitted_on: str = "validation"
    # accuracy / in-scope accuracy / OOS recall on the fitting split, without and with the rule
    figures: dict[str, dict[str, float]] = field(default_factory=dict)

    def predict_ids(self, logits: np.ndarray) -> np.ndarray:
        """The model's argmax, or the out-of-scope id where confidence is below threshold."""
        logits = np.asarray(logits)
        ids = logits.argmax(axis=-1)
        return np.where(confidence(logits, self.score, self.oos_id) < self.threshold,
                        self.oos_id, ids)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FallbackRule:
        try:
            rule = cls(**data)
        except TypeError as err:
            fail(f"malformed {CONFIG_KEY} in config.json: {err}")
        if rule.score not in SCORES or not math.isfinite(float(rule.threshold)):
            fail(f"malformed {CONFIG_KEY} in config.json: score {rule.score!r}, "
                 f"threshold {rule.threshold!r}")
        return rule

    def describe(self) -> str:
        what = "largest in-scope logit" if self.score == "max_logit" else \
            "largest in-scope softmax probability"
        return (f"`{self.label}` when the {what} is below {self.threshold:.4g} (fitted on the "
                f"{self.fitted_on} split: at most {self.max_in_scope_drop} pt of in-scope "
                "accuracy given up)")


def fit_rule(logits: np.ndarray, labels: np.ndarray, oos_id: int, label: str = "oos",
             score: str = DEFAULT_SCORE,
             max_in_scope_drop: float = DEFAULT_MAX_IN_SCOPE_DROP,
             split: str = "validation") -> FallbackRule:
    """The highest threshold that turns at most `max_in_scope_drop` points of the in-scope
    rows from right to `oos` (see the module docstring for why in-scope rows only)."""
    if score not in SCORES:
        fail(f"unknown fallback score {score!r}; choose one of {', '.join(SCORES)}")
    if not 0 <= max_in_scope_drop <= 100:
        fail(f"max_in_scope_drop must be between 0 and 100 points, got {max_in_scope_drop}")
    logits, labels = np.asarray(logits), np.asarray(labels)
    predicted = logits.argmax(axis=-1)
    values = confidence(logits, score, oos_id)
    in_scope = labels != oos_id
    if not in_scope.any():
        fail(f"no in-scope rows in the {split} split to fit the fallback on")
    # Raising the threshold past a right in-scope answer makes it wrong; wrong ones stay wrong.
    right = np.sort(values[in_scope & (predicted == labels)])
    allowed = math.floor(max_in_scope_drop / 100 * in_scope.sum() + 1e-9)
    if len(right) == 0:
        threshold = float(values.max()) + 1.0
    elif allowed >= len(right):
        threshold = float(np.nextafter(right[-1], np.inf))
    else:
        threshold = float(right[allowed])  # exactly `allowed` right answers lie below it
    rule = FallbackRule(threshold=threshold, oos_id=int(oos_id), label=label, score=score,
                        max_in_scope_drop=max_in_scope_drop, fitted_on=split)
    from slimformer.data.metrics import clinc_scores  # evaluate: not for the lean predictor

    rule.figures = {"without": clinc_scores(predicted, labels, oos_id),
                    "with": clinc_scores(rule.predict_ids(logits), labels, oos_id)}
    return rule


def rule_from_config(config: dict[str, Any]) -> FallbackRule | None:
    """The rule in a config dict (None where absent or null)."""
    data = config.get(CONFIG_KEY)
    return FallbackRule.from_dict(data) if data else None


def read_rule(folder: str | Path) -> FallbackRule | None:
    """The rule stored in a folder's config.json (None: none stored)."""
    path = Path(folder) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return rule_from_config(config) if isinstance(config, dict) else None


def store_rule(folder: str | Path, rule: FallbackRule | None) -> None:
    """Write (or, with None, remove) the rule in a folder's config.json; the folder must be
    this run's output."""
    path = Path(folder) / "config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    if rule is None:
        config.pop(CONFIG_KEY, None)
    else:
        config[CONFIG_KEY] = rule.to_dict()
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def rule_for_split(logits: np.ndarray, split: Any, data_args: Any,
                   split_name: str = "validation",
                   labels: np.ndarray | None = None) -> FallbackRule | None:
    """The rule fitted on a split (a `datasets.Dataset` from `load_data`) with the data
    arguments' settings; None for data without the out-of-scope label. `labels` are the rows'
    labels in the order of `logits` when that is not the split's (Trainer.predict's
    label_ids: a length-grouped sampler reorders the rows)."""
    column = "intent" if "intent" in split.column_names else "labels"  # raw or tokenized
    names = list(split.features[column].names)
    if data_args.oos_label not in names:
        return None
    labels = np.asarray(split[column]) if labels is None else np.asarray(labels)
    return fit_rule(logits, labels, names.index(data_args.oos_label),
                    data_args.oos_label, data_args.fallback_score, data_args.max_in_scope_drop,
                    split_name)


def fit_and_store(folder: Path, spec_kind: str | None, validation: Any, data_args: Any,
                  threads: int = 1) -> FallbackRule | None:
    """Fit the rule on a variant folder's own validation logits and store it in its
    config.json (a folder this run made)."""
    from slimformer.serving.registry import load_variant

    spec = f"{Path(folder).name}={folder}" + (f"@{spec_kind}" if spec_kind else "")
    variant = load_variant(spec, threads=threads)
    rule = rule_for_split(variant.logits(validation["text"]), validation, data_args)
    store_rule(folder, rule)
    return rule
