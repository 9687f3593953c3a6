"""What a card reads from a benchmark report and a variant's provenance record: its row, its
data, its machine, its steps (and which of them quantize)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from slimformer.data.clinc import HUB_DATASET
from slimformer.evaluation.report_data import BenchmarkReport

FULL_TEST_ROWS = 5500  # every clinc_oos config has the same test split: 4,500 in scope + 1,000 oos


def step_names(provenance: dict[str, Any]) -> list[str]:
    return [step.get("step", "?") for step in provenance.get("steps", [])]


def dataset_config_of(report: BenchmarkReport, override: str | None = None) -> str:
    data = report.data
    return override or data.get("dataset_config") or ("plus" if is_clinc(report) else "")


def is_clinc(report: BenchmarkReport) -> bool:
    """Whether the report was measured on CLINC150 (reports from before other data: yes)."""
    return report.data.get("clinc", True)


def dataset_ids(report: BenchmarkReport) -> list[str] | None:
    """The Hub datasets a card links to: CLINC150's, or the report's Hub id (none for a
    local file)."""
    if is_clinc(report):
        return [HUB_DATASET]
    hub_id = report.data.get("dataset")
    return [hub_id] if hub_id else None


def machine_summary(report: BenchmarkReport) -> str:
    env = report.environment
    cpu = env.get("cpu", {})
    flags = ", ".join(cpu.get("flags") or []) or "n/a"
    return (f"{cpu.get('model', 'unknown CPU')} ({cpu.get('cores', '?')} cores; flags {flags}), "
            f"{env.get('threads', '?')} thread(s), {env.get('platform', 'unknown platform')}, "
            f"{env.get('date', 'unknown date')}")


@lru_cache(maxsize=1)
def pass_steps() -> dict[str, Any]:
    """Each compression pass by the provenance step it records."""
    from slimformer.compression.passes.base import registry

    return {p.step: p for p in registry().values()}


def quantizing(steps: list[str]) -> bool:
    return any(s in pass_steps() and pass_steps()[s].quantizes for s in steps)
