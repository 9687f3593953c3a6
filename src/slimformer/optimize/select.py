"""Choosing the variant to ship: the fastest whose validation accuracy is within the budget.

Only the validation split decides (its accuracy, against the teacher's on the same split); the
test split is reported, never used to choose. Accuracy is with the out-of-scope fallback
where the variant has one (that is what `predict()` answers). Latency is the benchmark's
per-process p50.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slimformer.errors import fail
from slimformer.evaluation.report_data import BenchmarkReport


@dataclass
class Budget:
    max_accuracy_drop: float  # points of validation accuracy below the teacher's
    max_latency_ms: float | None = None
    max_size_mb: float | None = None


def validation_accuracy(row: dict[str, Any]) -> float:
    if "validation" not in row:
        fail(f"variant {row['name']!r} has no validation accuracy in the report: the choice "
             "rests on the validation split (benchmark with_validation)")
    scores = row["validation"]
    return 100 * scores.get("with_fallback", scores)["accuracy"]


def test_accuracy(row: dict[str, Any]) -> float:
    """Test accuracy as served (with the fallback where there is one), as a fraction."""
    return row.get("with_fallback", row)["accuracy"]


def shortfalls(row: dict[str, Any], teacher: dict[str, Any],
               budget: Budget) -> list[tuple[str, float]]:
    """How a variant misses the budget, each miss with its size relative to the limit
    (empty: it meets the budget)."""
    missed = []
    drop = validation_accuracy(teacher) - validation_accuracy(row)
    if drop > budget.max_accuracy_drop:
        excess = (drop - budget.max_accuracy_drop) / max(budget.max_accuracy_drop, 1.0)
        missed.append((f"{drop:.2f} pt below the teacher (budget {budget.max_accuracy_drop})",
                       excess))
    p50 = row["latency_ms"]["p50"]
    if budget.max_latency_ms is not None and p50 > budget.max_latency_ms:
        missed.append((f"p50 {p50:.2f} ms (budget {budget.max_latency_ms})",
                       p50 / budget.max_latency_ms - 1))
    if budget.max_size_mb is not None and row["size_mb"] > budget.max_size_mb:
        missed.append((f"{row['size_mb']:.1f} MB (budget {budget.max_size_mb})",
                       row["size_mb"] / budget.max_size_mb - 1))
    return missed


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
    misses = {r["name"]: shortfalls(r, teacher, budget) for r in rows}
    missed = {name: [text for text, _ in found] for name, found in misses.items()}
    eligible = [r for r in rows if not missed[r["name"]]]
    if not eligible:  # the closest: the smallest misses, relative to their limits
        closest = min(rows, key=lambda r: sum(excess for _, excess in misses[r["name"]]))
        fail(f"no variant meets the budget; the closest is {closest['name']!r}: "
             f"{'; '.join(missed[closest['name']])}")
    best = min(eligible, key=lambda r: (r["latency_ms"]["p50"], -validation_accuracy(r)))
    drop = validation_accuracy(teacher) - validation_accuracy(best)
    speedup = teacher["latency_ms"]["p50"] / best["latency_ms"]["p50"]
    reason = (f"fastest within {budget.max_accuracy_drop} pt of the teacher's validation "
              f"accuracy: {best['name']} ({best.get('kind', '?')}), p50 "
              f"{best['latency_ms']['p50']:.2f} ms, {speedup:.1f}x the teacher, validation "
              f"accuracy {validation_accuracy(best):.2f}% ({-drop:+.2f} pt), "
              f"{best['size_mb']:.1f} MB")
    return {"name": best["name"], "path": best.get("path"), "kind": best.get("kind"),
            "reason": reason, "speedup": speedup, "validation_drop_points": drop,
            "test_accuracy": test_accuracy(best), "teacher_test_accuracy": test_accuracy(teacher),
            "test_difference": best.get("test_difference"),
            "missed": missed, "pareto_front": pareto_front(rows)}
