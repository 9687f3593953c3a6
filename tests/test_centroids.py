"""The distance-to-centroids out-of-scope score: the Mahalanobis formula, a threshold fitted
on out-of-fold distances, stored and read back whole, refused when malformed."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slimformer.errors import SlimformerError
from slimformer.serving.centroids import SHRINKAGE, fit_centroids, out_of_fold_distances
from slimformer.serving.fallback import CONFIG_KEY, FallbackRule, fit_rule, read_rule

OOS = 2


def clusters(rows: int, seed: int, oos_share: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """5-dimensional features (ids 0, 1, 3, 4 in scope, 2 oos): tight clusters around each
    intent's mean, out-of-scope rows scattered between them."""
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(rows) < oos_share, OOS, rng.choice([0, 1, 3, 4], rows))
    centres = 4.0 * np.eye(5)
    x = centres[labels] + rng.normal(0, 0.5, (rows, 5))
    x[labels == OOS] = rng.normal(1.0, 2.0, ((labels == OOS).sum(), 5))
    return x, labels


def test_the_distance_is_the_mahalanobis_formula():
    x, labels = clusters(400, 0)
    fitted = fit_centroids(x, labels, OOS)
    rule = FallbackRule(threshold=0.0, oos_id=OOS, score="mahalanobis", centroids=fitted)
    ins = labels != OOS
    means = np.stack([x[labels == c].mean(axis=0) for c in (0, 1, 3, 4)])
    residuals = x[ins] - means[np.searchsorted([0, 1, 3, 4], labels[ins])]
    covariance = residuals.T @ residuals / ins.sum()
    covariance = (1 - SHRINKAGE) * covariance + SHRINKAGE * np.trace(covariance) / 5 * np.eye(5)
    inverse = np.linalg.inv(covariance)
    expected = [min(float((row - m) @ inverse @ (row - m)) for m in means) for row in x[:20]]
    np.testing.assert_allclose(-rule.confidence(x[:20]), expected, rtol=1e-5)
    assert len(fitted["means"]) == 4  # one mean per in-scope intent, none for oos


def test_out_of_fold_distances_are_larger_than_the_fitted_rows_own():
    x, labels = clusters(600, 1)
    own = -FallbackRule(0.0, OOS, score="mahalanobis",
                        centroids=fit_centroids(x, labels, OOS)).confidence(x)
    held_out = out_of_fold_distances(x, labels, OOS)
    ins = labels != OOS
    assert held_out[ins].mean() > own[ins].mean()
    # and the threshold is the out-of-fold one: at most 0.5 pt of right in-scope rows below it
    rule = fit_rule(x, labels, OOS, score="mahalanobis")
    right = ins & (x.argmax(axis=1) == labels)
    below = (-held_out[right] < rule.threshold).sum()
    assert below == np.floor(0.005 * ins.sum())


def test_the_rule_catches_out_of_scope_rows_and_round_trips_through_json(tmp_path):
    x, labels = clusters(2000, 2, 0.2)
    rule = fit_rule(x, labels, OOS, score="mahalanobis")
    assert rule.figures["with"]["oos_recall"] > 0.8 > rule.figures["without"]["oos_recall"]
    (tmp_path / "config.json").write_text(json.dumps({CONFIG_KEY: rule.to_dict()}))
    again = read_rule(tmp_path)
    assert again == rule
    np.testing.assert_array_equal(again.predict_ids(x), rule.predict_ids(x))
    summary = rule.summary()
    assert summary["centroids"] == {"shape": [4, 5], "shrinkage": SHRINKAGE}
    assert "means" not in json.dumps(summary)


@pytest.mark.parametrize("centroids, message", [
    ({}, "needs centroids with means and precision"),
    ({"means": [[1.0, 2.0]], "precision": [[1.0]]}, "do not fit together"),
    ({"means": [[1.0]], "precision": [[float("nan")]]}, "must be finite"),
    ({"means": [["a"]], "precision": [[1.0]]}, "lists of numbers"),
])
def test_malformed_centroids_are_one_line(tmp_path, centroids, message):
    data = {"threshold": 1.0, "oos_id": OOS, "score": "mahalanobis", "centroids": centroids}
    (tmp_path / "config.json").write_text(json.dumps({CONFIG_KEY: data}))
    with pytest.raises(SlimformerError, match=message) as caught:
        read_rule(tmp_path)
    assert "\n" not in str(caught.value)


def test_centroids_of_another_model_are_refused_in_one_line():
    x, labels = clusters(300, 3)
    rule = fit_rule(x, labels, OOS, score="mahalanobis")
    with pytest.raises(SlimformerError, match="fitted for another model"):
        rule.predict_ids(np.zeros((2, 7)))


def test_a_tiny_split_still_fits_a_rule():
    """One in-scope row and two oos ones (a --max_samples run): the in-scope row's fold has no
    other in-scope row to fit means on."""
    x = np.array([[4.0, 0, 0, 0, 0], [0, 1.0, 1.0, 0, 0], [1.0, 1.0, 1.0, 1.0, 1.0]])
    labels = np.array([0, OOS, OOS])
    rule = fit_rule(x, labels, OOS, score="mahalanobis")
    assert np.isfinite(rule.threshold)
    assert len(rule.predict_ids(x)) == 3


def test_the_fitted_split_is_scored_out_of_fold_as_the_rule_was_fitted():
    """What the benchmark reports on validation (where optimize chooses) is the rule's own
    out-of-fold figure, not the in-sample one, which flatters it."""
    from slimformer.data.metrics import clinc_scores

    x, labels = clusters(800, 4, 0.15)
    rule = fit_rule(x, labels, OOS, score="mahalanobis")
    fitted = clinc_scores(rule.predict_fitted_ids(x, labels), labels, OOS)
    assert fitted == rule.figures["with"]
    in_sample = clinc_scores(rule.predict_ids(x), labels, OOS)
    assert in_sample["in_scope_accuracy"] >= fitted["in_scope_accuracy"]
    other = fit_rule(x, labels, OOS, score="max_logit")  # other scores: nothing changes
    np.testing.assert_array_equal(other.predict_fitted_ids(x, labels), other.predict_ids(x))
