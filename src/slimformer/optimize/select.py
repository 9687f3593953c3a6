"""Choosing the variant to ship: the fastest whose validation accuracy is within the budget.

Only the validation split decides (its accuracy, against the teacher's on the same split); the
test split is reported, never used to choose. Accuracy is with the out-of-scope fallback
where the variant has one (that is what `predict()` answers). Latency is the benchmark's
per-process p50.

A drop measured on validation is an estimate, and picking the fastest of many candidates near
the limit favours those whose estimate happens to flatter them (the winner's curse): in nine
full runs the variant chosen by its point estimate lost 0.45 to 1.33 pt on test, each within
the 0.5 pt budget on validation. So with `confidence` above 0.5 a variant must be within
budget at that one-sided confidence: its drop plus z standard errors of the paired
per-row difference to the teacher on validation (paired.py). 0.5 is the point estimate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

from slimformer.checks import check_range
from slimformer.errors import fail
from slimformer.evaluation.paired import validation_difference
from slimformer.evaluation.report_data import BenchmarkReport

logger = logging.getLogger(__name__)


@dataclass
class Budget:
    max_accuracy_drop: float  # points of validation accuracy below the teacher's
    max_latency_ms: float | None = None
    max_size_mb: float | None = None
    # how sure the drop must be within max_accuracy_drop, one-sided (0.5: the point estimate;
    # `slimformer optimize` passes its --budget_confidence, 0.8 by default)
    confidence: float = 0.5

    def __post_init__(self) -> None:  # the Python API's check, by the CLI's range table
        check_range("budget_confidence", self.confidence)


def validation_accuracy(row: dict[str, Any]) -> float:
    if "validation" not in row:
        fail(f"variant {row['name']!r} has no validation accuracy in the report: the choice "
             "rests on the validation split (benchmark with_validation)")
    scores = row["validation"]
    return 100 * scores.get("with_fallback", scores)["accuracy"]


def test_accuracy(row: dict[str, Any]) -> float:
    """Test accuracy as served (with the fallback where there is one), as a fraction."""
    return row.get("with_fallback", row)["accuracy"]


def shortfalls(row: dict[str, Any], teacher: dict[str, Any], budget: Budget,
               bound: float | None) -> list[tuple[str, float]]:
    """How a variant misses the budget, each miss with its size relative to the limit
    (empty: it meets the budget); `bound` is its drop_bound (None: the drop as measured)."""
    missed = []
    drop = validation_accuracy(teacher) - validation_accuracy(row)
    bound = drop if bound is None else bound  # no per-row answers: choose() warns once
    if bound > budget.max_accuracy_drop:
        excess = (bound - budget.max_accuracy_drop) / max(budget.max_accuracy_drop, 1.0)
        sure = "" if bound == drop else \
            f", up to {bound:.2f} at {budget.confidence:.0%} confidence"
        missed.append((f"{drop:.2f} pt below the teacher{sure} (budget "
                       f"{budget.max_accuracy_drop})", excess))
    p50 = row["latency_ms"]["p50"]
    if budget.max_latency_ms is not None and p50 > budget.max_latency_ms:
        missed.append((f"p50 {p50:.2f} ms (budget {budget.max_latency_ms})",
                       p50 / budget.max_latency_ms - 1))
    if budget.max_size_mb is not None and row["size_mb"] > budget.max_size_mb:
        missed.append((f"{row['size_mb']:.1f} MB (budget {budget.max_size_mb})",
                       row["size_mb"] / budget.max_size_mb - 1))
    return missed


def drop_bound(row: dict[str, Any], teacher: dict[str, Any],
               confidence: float) -> float | None:
    """The validation drop to the teacher, in points, plus z(confidence) standard errors of
    its paired per-row difference; the drop itself at 0.5 or for the teacher's own row; None
    where the report holds no per-row validation answers for the pair (an older benchmark)."""
    drop = validation_accuracy(teacher) - validation_accuracy(row)
    if confidence <= 0.5 or row is teacher:
        return drop
    found = validation_difference(row, teacher)
    if found is None:
        return None
    return drop + NormalDist().inv_cdf(confidence) * found["standard_error"]


def pareto_front(rows: list[dict[str, Any]]) -> list[str]:
    """Names of the variants no other beats on both p50 and validation accuracy."""
    front = []
    for row in rows:
        p50, accuracy = row["latency_ms"]["p50"], validation_accuracy(row)
        dominated = any(o["latency_ms"]["p50"] <= p50 and validation_accuracy(o) >= accuracy
                        and (o["latency_ms"]["p50"] < p50 or validation_accuracy(o) > accuracy)
                        for o in rows)
        if not dominated:
            front.append(row["name"])
    return front


def choose(report: BenchmarkReport, teacher_name: str, budget: Budget) -> dict[str, Any]:
    """The fastest variant within budget, with the reason; a clear error naming the closest
    candidate when none is."""
    rows = report.variants
    teacher = report.row(teacher_name)  # a name not in the report: one line listing them
    bounds = {r["name"]: drop_bound(r, teacher, budget.confidence) for r in rows}
    unpaired = [name for name, bound in bounds.items() if bound is None]
    if unpaired:  # one warning for the report
        logger.warning("no per-row validation answers in the report (an older benchmark) for "
                       "%s: their drops are taken as measured, not at %.0f%% confidence",
                       ", ".join(unpaired), 100 * budget.confidence)
    misses = {r["name"]: shortfalls(r, teacher, budget, bounds[r["name"]]) for r in rows}
    missed = {name: [text for text, _ in found] for name, found in misses.items()}
    eligible = [r for r in rows if not missed[r["name"]]]
    if not eligible:  # the closest: the smallest misses, relative to their limits
        closest = min(rows, key=lambda r: sum(excess for _, excess in misses[r["name"]]))
        fail(f"no variant meets the budget; the closest is {closest['name']!r}: "
             f"{'; '.join(missed[closest['name']])}")
    best = min(eligible, key=lambda r: (r["latency_ms"]["p50"], -validation_accuracy(r)))
    drop = validation_accuracy(teacher) - validation_accuracy(best)
    speedup = teacher["latency_ms"]["p50"] / best["latency_ms"]["p50"]
    sure = f" at {budget.confidence:.0%} confidence" if budget.confidence > 0.5 else ""
    reason = (f"fastest within {budget.max_accuracy_drop} pt of the teacher's validation "
              f"accuracy{sure}: {best['name']} ({best.get('kind', '?')}), p50 "
              f"{best['latency_ms']['p50']:.2f} ms, {speedup:.1f}x the teacher, validation "
              f"accuracy {validation_accuracy(best):.2f}% ({-drop:+.2f} pt), "
              f"{best['size_mb']:.1f} MB")
    return {"name": best["name"], "path": best.get("path"), "kind": best.get("kind"),
            "reason": reason, "speedup": speedup, "validation_drop_points": drop,
            "test_accuracy": test_accuracy(best), "teacher_test_accuracy": test_accuracy(teacher),
            "test_difference": best.get("test_difference"),
            "validation_difference": validation_difference(best, teacher),
            "missed": missed, "pareto_front": pareto_front(rows)}
