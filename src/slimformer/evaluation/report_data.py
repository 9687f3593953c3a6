"""The benchmark report as a type: what `benchmark` writes to report.json, and what the choice,
the reports, the cards and the Hub staging read back.

`from_dict` is the one reader of a report.json, so a hand-edited or truncated file fails there
in one line naming what is wrong, instead of as a KeyError deep in a card. A row stays a
mapping (`VariantRow` names its keys): its figures are written by the benchmark, read by
name, and carried whole into JSON.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypedDict

from slimformer.errors import fail
from slimformer.files import read_json

# What every row must hold for the report, the choice and the cards to read it.
ROW_KEYS = ("name", "kind", "path", "size_mb", "accuracy", "latency_ms")


class VariantRow(TypedDict, total=False):
    """One variant's figures (fractions for accuracies, ms for latency)."""

    name: str
    kind: str
    path: str
    size_mb: float
    accuracy: float
    in_scope_accuracy: float
    oos_recall: float
    with_fallback: dict[str, float]  # the same three figures with its fallback applied
    validation: dict[str, Any]  # validation scores (optimize's choice rests on them)
    fallback: dict[str, Any]  # the rule's summary, its source and its description
    latency_ms: dict[str, Any]  # mean, p50, p95, p99, and each round's p50
    throughput_qps: float | None
    throughput: dict[str, Any]
    peak_memory_mb: float
    pids: list[int]
    timing_reliable: bool
    timing_notes: list[str]
    ratios: dict[str, float | None]  # set by add_ratios: variant / baseline per figure
    accuracy_delta_points: float
    speed_vs_baseline: str
    test_right: dict[str, str]  # per test row right or wrong, packed (paired.py)
    test_difference: dict[str, Any] | None  # paired test-accuracy difference to the baseline


@dataclass
class BenchmarkReport:
    environment: dict[str, Any]  # machine, CPU flags, threads, versions
    settings: dict[str, Any]  # the BenchmarkSettings it ran with
    test_rows: int
    timing: dict[str, Any]  # method, rounds and every turn of the per-process timing
    variants: list[VariantRow]
    data: dict[str, Any] = field(default_factory=dict)  # what it was measured on
    baseline: str | None = None  # set by add_ratios

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str | Path = "the report") -> BenchmarkReport:
        """A report read back from JSON, checked: a list of rows with the keys the readers
        need, finite figures, and no two rows of one name."""
        if not isinstance(data, dict) or not data.get("variants") or "environment" not in data:
            fail(f"{source} is not a slimformer benchmark report (no variants or environment)")
        unknown = sorted(set(data) - {f for f in cls.__dataclass_fields__})
        if unknown:
            fail(f"{source}: unknown report keys {', '.join(unknown)}")
        rows = data["variants"]
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            fail(f"{source}: variants must be a list of objects")
        for i, row in enumerate(rows):
            check_row(row, f"{source}: variant {row.get('name', i)!r}")
        names = [row["name"] for row in rows]
        if len(set(names)) != len(names):
            fail(f"{source}: variant names repeat: {', '.join(names)}")
        for key in ("environment", "settings", "timing", "data"):
            if not isinstance(data.get(key, {}), dict):
                fail(f"{source}: {key} must be an object")
        rows_count = data.get("test_rows", 0)
        if isinstance(rows_count, bool) or not isinstance(rows_count, int) or rows_count < 0:
            fail(f"{source}: test_rows must be a count of rows, got {rows_count!r}")
        return cls(environment=data["environment"], settings=data.get("settings", {}),
                   test_rows=rows_count, timing=data.get("timing", {}),
                   variants=rows, data=data.get("data") or {}, baseline=data.get("baseline"))

    def names(self) -> list[str]:
        return [row["name"] for row in self.variants]

    def row(self, name: str) -> VariantRow:
        """The row of one variant; a name not in the report is one line listing them."""
        for row in self.variants:
            if row["name"] == name:
                return row
        fail(f"variant {name!r} is not in the benchmark report; it has: "
             f"{', '.join(self.names())}")


def load_report(path: str | Path) -> BenchmarkReport:
    """The report in a report.json, or in the folder holding one."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        fail(f"benchmark report not found: {path} (run recipes/benchmark.py first)")
    return BenchmarkReport.from_dict(read_json(path), path)


def check_row(row: dict[str, Any], where: str) -> None:
    missing = [key for key in ROW_KEYS if key not in row]
    if missing:
        fail(f"{where} lacks {', '.join(missing)}")
    if not isinstance(row["name"], str) or not row["name"]:
        fail(f"{where}: name must be a non-empty string")
    figures = [("size_mb", row["size_mb"]), ("accuracy", row["accuracy"])]
    latency = row["latency_ms"]
    if not isinstance(latency, dict) or "p50" not in latency:
        fail(f"{where}: latency_ms must be an object with p50")
    figures += [(f"latency_ms.{k}", v) for k, v in latency.items() if k != "p50_rounds"]
    for key, value in figures:
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value):
            fail(f"{where}: {key} must be a finite number, got {value!r}")
    answers = row.get("test_right", {})
    if not isinstance(answers, dict) or not all(
            isinstance(v, str) for v in answers.values()):
        fail(f"{where}: test_right must map argmax / with_fallback to packed answers (hex)")
