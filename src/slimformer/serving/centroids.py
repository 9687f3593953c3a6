"""The distance-to-centroids out-of-scope score: Mahalanobis distance of a query's logit vector
to the nearest in-scope intent's mean (Lee et al. 2018; Podolskiy et al. 2021 for intents).

Each intent is a Gaussian with its own mean and one covariance shared by all, fitted on the
validation split's in-scope rows. The covariance is shrunk towards a multiple of the identity
(Ledoit-Wolf style, a fixed weight) because validation holds only 20 queries per intent for
151 dimensions. The features are the logits, which every variant kind already produces: the
pooled embedding would need an extra output in every export, and on the full profile's
models it did no better (docs/distillation.md).

Distances of rows the means were fitted on are too small, so the threshold is fitted on
out-of-fold distances: each fold's rows are measured against means fitted on the other folds.

This module needs numpy only: the lean predictor applies it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SHRINKAGE = 0.1  # weight of the identity in the shared covariance
FOLDS = 10  # out-of-fold distances for the threshold
DIGITS = 7  # significant digits stored: float32 precision, a smaller config.json


def fit_centroids(features: np.ndarray, labels: np.ndarray, oos_id: int,
                  shrinkage: float = SHRINKAGE) -> dict[str, Any]:
    """Per-intent means and the shrunk shared precision matrix of the in-scope rows, as the
    rule stores them."""
    means, precision = fitted_arrays(features, labels, oos_id, shrinkage)
    return {"means": rounded(means), "precision": rounded(precision), "shrinkage": shrinkage}


def fitted_arrays(features: np.ndarray, labels: np.ndarray, oos_id: int,
                  shrinkage: float = SHRINKAGE) -> tuple[np.ndarray, np.ndarray]:
    """The means and precision matrix themselves (fit_centroids rounds them for storing)."""
    in_scope = labels != oos_id
    x = np.asarray(features, dtype=np.float64)[in_scope]
    y = np.asarray(labels)[in_scope]
    intents = np.unique(y)
    means = np.stack([x[y == intent].mean(axis=0) for intent in intents])
    residuals = x - means[np.searchsorted(intents, y)]
    covariance = residuals.T @ residuals / len(residuals)
    scale = np.trace(covariance) / len(covariance)
    covariance = (1 - shrinkage) * covariance + shrinkage * scale * np.eye(len(covariance))
    return means, np.linalg.pinv(covariance)


def rounded(values: np.ndarray) -> list[list[float]]:
    return [[float(f"{v:.{DIGITS}g}") for v in row] for row in values]


@dataclass(frozen=True)
class Centroids:
    """The means and shared precision as arrays, with each mean's own term of the distance:
    built once per rule from the stored lists, or per fold from fitted arrays."""

    means: np.ndarray
    precision: np.ndarray
    mean_terms: np.ndarray

    @classmethod
    def of(cls, means: np.ndarray, precision: np.ndarray) -> Centroids:
        return cls(means, precision, ((means @ precision) * means).sum(axis=1))

    @classmethod
    def from_stored(cls, centroids: dict[str, Any]) -> Centroids:
        return cls.of(np.asarray(centroids["means"], dtype=np.float64),
                      np.asarray(centroids["precision"], dtype=np.float64))

    @property
    def width(self) -> int:
        return len(self.precision)

    def nearest_distance(self, features: np.ndarray) -> np.ndarray:
        """Each row's squared Mahalanobis distance to its nearest intent mean."""
        x = np.asarray(features, dtype=np.float64)
        xp = x @ self.precision
        distances = ((xp * x).sum(axis=1)[:, None] - 2 * xp @ self.means.T
                     + self.mean_terms[None, :])
        return distances.min(axis=1)


def out_of_fold_distances(features: np.ndarray, labels: np.ndarray, oos_id: int,
                          folds: int = FOLDS, seed: int = 0) -> np.ndarray:
    """Each row's distance to means fitted without its fold (folds stratified by label)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    fold = np.zeros(len(labels), dtype=int)
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % folds
    distances = np.empty(len(labels))
    everything = None  # for a fold whose complement has no in-scope row (tiny splits)
    for k in range(folds):
        held_out = fold == k
        if not held_out.any():
            continue
        if (labels[~held_out] != oos_id).any():
            fitted = fitted_arrays(features[~held_out], labels[~held_out], oos_id)
        else:
            everything = everything or fitted_arrays(features, labels, oos_id)
            fitted = everything
        distances[held_out] = Centroids.of(*fitted).nearest_distance(features[held_out])
    return distances


def check_centroids(centroids: Any) -> str | None:
    """What is wrong with stored centroids (None: nothing)."""
    if not isinstance(centroids, dict) or not {"means", "precision"} <= set(centroids):
        return "the mahalanobis score needs centroids with means and precision"
    try:
        means = np.asarray(centroids["means"], dtype=np.float64)
        precision = np.asarray(centroids["precision"], dtype=np.float64)
    except (TypeError, ValueError):
        return "centroids must be lists of numbers"
    width = means.shape[1] if means.ndim == 2 else -1
    if width < 1 or precision.shape != (width, width):
        return f"centroids of shapes {means.shape} and {precision.shape} do not fit together"
    if not (np.isfinite(means).all() and np.isfinite(precision).all()):
        return "centroids must be finite"
    return None
