"""The out-of-scope fallback: answer `oos` when the model is not confident enough.

The rule thresholds a confidence score computed from the logits alone (so every variant kind,
the lean predictor included, applies it the same way): the largest logit among the in-scope
labels (MaxLogit, Hendrycks et al. 2022), the largest in-scope softmax probability (Larson
et al. 2019's baseline), the same at a temperature fitted on the in-scope validation rows
(Guo et al. 2017), the negative energy, logsumexp of the in-scope logits (Liu et al. 2020),
or minus the Mahalanobis distance of the logits to the nearest intent's mean (centroids.py).
Below the threshold the answer is the out-of-scope label. Score "auto" fits each and keeps
the one whose rule answers the validation split best.

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
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail
from slimformer.serving.centroids import (
    Centroids,
    check_centroids,
    fit_centroids,
    out_of_fold_distances,
)

CONFIG_KEY = "oos_fallback"
SCORES = ("max_logit", "max_softmax", "temperature_softmax", "energy", "mahalanobis")
AUTO = "auto"  # fit every score, keep the one that answers validation best
DEFAULT_SCORE = "max_logit"
DEFAULT_MAX_IN_SCOPE_DROP = 0.5
TEMPERATURES = np.geomspace(0.25, 20.0, 60)  # the grid temperature scaling searches


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    scaled = logits / temperature
    shifted = np.exp(scaled - scaled.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def confidence(logits: np.ndarray, score: str, oos_id: int, temperature: float = 1.0,
               centroids: Centroids | None = None) -> np.ndarray:
    """Each row's confidence that it is in scope: its largest in-scope logit (max_logit), the
    largest in-scope probability (max_softmax; temperature_softmax at a fitted temperature,
    Guo et al. 2017), the negative energy T * logsumexp(in-scope logits / T) (Liu et al.
    2020), or minus the squared Mahalanobis distance to the nearest intent mean."""
    logits = np.asarray(logits, dtype=np.float64)
    if score == "mahalanobis":
        width = centroids.width if centroids is not None else 0
        if logits.ndim != 2 or logits.shape[1] != width:
            fail(f"the fallback's centroids have {width} dimensions, the model gives "
                 f"{logits.shape[-1]} logits: the rule was fitted for another model")
        return -centroids.nearest_distance(logits)
    if score in ("max_softmax", "temperature_softmax"):
        values = softmax(logits, temperature if score == "temperature_softmax" else 1.0)
    elif score in ("max_logit", "energy"):
        values = logits.copy()
    else:
        fail(f"unknown fallback score {score!r}; choose one of {', '.join(SCORES)}")
    values[:, oos_id] = -np.inf
    if score == "energy":
        top = values.max(axis=-1, keepdims=True)
        return temperature * (top[:, 0] / temperature + np.log(
            np.exp((values - top) / temperature).sum(axis=-1)))
    return values.max(axis=-1)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of the labels (temperature
    scaling, Guo et al. 2017), from a fixed grid."""
    logits = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(labels))

    def nll(t: float) -> float:
        return float(-np.log(softmax(logits, t)[rows, labels] + 1e-300).mean())

    return float(min(TEMPERATURES, key=nll))


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
    temperature: float = 1.0  # of temperature_softmax (fitted) and energy
    # with score "auto": each score's figures with its own threshold on the fitting split
    compared: dict[str, dict[str, float]] = field(default_factory=dict)
    # of mahalanobis: intent means and shared precision of the logits (centroids.py)
    centroids: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def centroid_arrays(self) -> Centroids | None:
        return Centroids.from_stored(self.centroids) if self.centroids else None

    def confidence(self, logits: np.ndarray) -> np.ndarray:
        return confidence(logits, self.score, self.oos_id, self.temperature,
                          self.centroid_arrays)

    def predict_ids(self, logits: np.ndarray) -> np.ndarray:
        """The model's argmax, or the out-of-scope id where confidence is below threshold."""
        logits = np.asarray(logits)
        ids = logits.argmax(axis=-1)
        return np.where(self.confidence(logits) < self.threshold, self.oos_id, ids)

    def predict_fitted_ids(self, logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """predict_ids on the split the rule was fitted on: for mahalanobis, each row against
        means fitted without its fold (the fitted rows' own distances are too small)."""
        if self.score != "mahalanobis":
            return self.predict_ids(logits)
        logits = np.asarray(logits)
        distances = out_of_fold_distances(logits, np.asarray(labels), self.oos_id)
        return np.where(-distances < self.threshold, self.oos_id, logits.argmax(axis=-1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The rule without its centroids' arrays: for reports, which need no 45,000 numbers
        per variant."""
        data = self.to_dict()
        if data["centroids"]:
            data["centroids"] = {"shape": [len(self.centroids["means"]),
                                           len(self.centroids["precision"])],
                                 "shrinkage": self.centroids.get("shrinkage")}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FallbackRule:
        if not isinstance(data, dict):
            fail(f"malformed {CONFIG_KEY} in config.json: not a JSON object")
        try:
            rule = cls(**data)
        except TypeError as err:
            fail(f"malformed {CONFIG_KEY} in config.json: {err}")
        if any(isinstance(v, bool) or not isinstance(v, int | float) for v in (
                rule.threshold, rule.temperature, rule.oos_id)):
            fail(f"malformed {CONFIG_KEY} in config.json: threshold, temperature and oos_id "
                 "must be numbers")
        if rule.score not in SCORES or not math.isfinite(float(rule.threshold)) or not (
                math.isfinite(float(rule.temperature)) and float(rule.temperature) > 0):
            fail(f"malformed {CONFIG_KEY} in config.json: score {rule.score!r}, "
                 f"threshold {rule.threshold!r}, temperature {rule.temperature!r}")
        if rule.score == "mahalanobis" and (problem := check_centroids(rule.centroids)):
            fail(f"malformed {CONFIG_KEY} in config.json: {problem}")
        return rule

    def describe(self) -> str:
        what = {"max_logit": "largest in-scope logit",
                "max_softmax": "largest in-scope softmax probability",
                "temperature_softmax": "largest in-scope softmax probability at temperature "
                                       f"{self.temperature:.3g}",
                "energy": "negative energy (logsumexp of the in-scope logits)",
                "mahalanobis": "minus the squared Mahalanobis distance of the logits to the "
                               "nearest intent's mean"}[self.score]
        return (f"`{self.label}` when the {what} is below {self.threshold:.4g} (fitted on the "
                f"{self.fitted_on} split: at most {self.max_in_scope_drop} pt of in-scope "
                "accuracy given up)")


def fit_rule(logits: np.ndarray, labels: np.ndarray, oos_id: int, label: str = "oos",
             score: str = DEFAULT_SCORE,
             max_in_scope_drop: float = DEFAULT_MAX_IN_SCOPE_DROP,
             split: str = "validation") -> FallbackRule:
    """The highest threshold that turns at most `max_in_scope_drop` points of the in-scope
    rows from right to `oos` (see the module docstring for why in-scope rows only). With
    score "auto", every score gets its threshold so, and the one whose rule answers the split
    best is kept (the same in-scope cost for all: the one that catches most OOS queries)."""
    if score not in (*SCORES, AUTO):
        fail(f"unknown fallback score {score!r}; choose one of {', '.join(SCORES)} or {AUTO}")
    if not 0 <= max_in_scope_drop <= 100:
        fail(f"max_in_scope_drop must be between 0 and 100 points, got {max_in_scope_drop}")
    logits, labels = np.asarray(logits), np.asarray(labels)
    if not (labels != oos_id).any():
        fail(f"no in-scope rows in the {split} split to fit the fallback on")
    if score != AUTO:
        return fit_one(logits, labels, oos_id, label, score, max_in_scope_drop, split)
    return best_rule([fit_one(logits, labels, oos_id, label, s, max_in_scope_drop, split)
                      for s in SCORES])


def best_rule(rules: list[FallbackRule]) -> FallbackRule:
    """The rule that answers its fitting split best (the first of equals), with every rule's
    figures on that split: what score "auto" keeps."""
    best = max(rules, key=lambda r: r.figures["with"]["accuracy"])
    best.compared = {r.score: r.figures["with"] for r in rules}
    return best


def fit_one(logits: np.ndarray, labels: np.ndarray, oos_id: int, label: str, score: str,
            max_in_scope_drop: float, split: str) -> FallbackRule:
    predicted = logits.argmax(axis=-1)
    in_scope = labels != oos_id
    temperature = (fit_temperature(logits[in_scope], labels[in_scope])
                   if score == "temperature_softmax" else 1.0)
    centroids = fit_centroids(logits, labels, oos_id) if score == "mahalanobis" else {}
    # The threshold sees out-of-fold distances: the fitted rows' own are too small.
    values = (-out_of_fold_distances(logits, labels, oos_id) if centroids
              else confidence(logits, score, oos_id, temperature))
    threshold = threshold_within(values, predicted, labels, oos_id, max_in_scope_drop)
    rule = FallbackRule(threshold=threshold, oos_id=int(oos_id), label=label, score=score,
                        max_in_scope_drop=max_in_scope_drop, fitted_on=split,
                        temperature=temperature, centroids=centroids)
    from slimformer.data.metrics import clinc_scores  # evaluate: not for the lean predictor

    # The rule's figures come from the values its threshold was fitted on (out-of-fold ones
    # for mahalanobis), so "auto" compares scores on an equal footing.
    answers = np.where(values < threshold, oos_id, predicted)
    rule.figures = {"without": clinc_scores(predicted, labels, oos_id),
                    "with": clinc_scores(answers, labels, oos_id)}
    return rule


def threshold_within(values: np.ndarray, predicted: np.ndarray, labels: np.ndarray,
                     oos_id: int, max_in_scope_drop: float) -> float:
    """The highest threshold on `values` that turns at most `max_in_scope_drop` points of the
    in-scope rows from right to `oos`."""
    in_scope = labels != oos_id
    # Raising the threshold past a right in-scope answer makes it wrong; wrong ones stay wrong.
    right = np.sort(values[in_scope & (predicted == labels)])
    allowed = math.floor(max_in_scope_drop / 100 * in_scope.sum() + 1e-9)
    if len(right) == 0:
        return float(values.max()) + 1.0
    if allowed >= len(right):
        return float(np.nextafter(right[-1], np.inf))
    return float(right[allowed])  # exactly `allowed` right answers lie below it


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
