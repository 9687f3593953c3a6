"""The run's own report: every variant with its validation and test accuracy, the budget, the
Pareto front and the chosen variant, as report.md, report.json, report.png and best.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slimformer.evaluation.report import difference_cell, label_points, p50_cell
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.optimize.select import Budget, test_accuracy, validation_accuracy


def table(report: BenchmarkReport, choice: dict[str, Any]) -> list[str]:
    lines = ["| Variant | Kind | Validation acc. % | Test acc. % | Test vs teacher, pt (95% "
             "interval) | p50 ms (rounds) | Size MB | Budget |", "|---" * 8 + "|"]
    for row in sorted(report.variants, key=lambda r: r["latency_ms"]["p50"]):
        name = row["name"]
        mark = "**chosen**" if name == choice["name"] else (
            "met" if not choice["missed"][name] else "missed: " + "; ".join(choice["missed"][name]))
        front = " (Pareto front)" if name in choice["pareto_front"] else ""
        lines.append(f"| {name}{front} | {row.get('kind', '?')} | "
                     f"{validation_accuracy(row):.2f} | {100 * test_accuracy(row):.2f} | "
                     f"{difference_cell(row, '—')} | {p50_cell(row)} | "
                     f"{row['size_mb']:.1f} | {mark} |")
    return lines


def test_line(choice: dict[str, Any]) -> str:
    """The chosen variant's test accuracy against the teacher's, with the paired interval of
    the difference where the report has one."""
    line = (f"On the test split (reported, never used to choose): "
            f"{100 * choice['test_accuracy']:.2f}% against the teacher's "
            f"{100 * choice['teacher_test_accuracy']:.2f}%")
    found = choice.get("test_difference")
    if found:
        line += (f", a difference of {found['points']:+.2f} pt, 95% interval "
                 f"{found['low']:+.2f} to {found['high']:+.2f} (paired over the same "
                 f"{found['rows']:,} queries: {found['only_this_right']} only it answers right, "
                 f"{found['only_base_right']} only the teacher)")
    return line + "."


def usage(choice: dict[str, Any]) -> str:
    path = choice.get("path") or "FOLDER"
    if choice.get("kind") == "onnx-lean":
        return (f"from slimformer import load_variant\n"
                f"predictor = load_variant(\"{path}@onnx-lean\")  # onnxruntime + tokenizers\n"
                f"predictor.predict([\"what's my balance\"])  # the fallback rule applied\n\n"
                f"from optimum.onnxruntime import pipeline\n"
                f"pipe = pipeline(\"text-classification\", model=\"{path}\")")
    return (f"from transformers import pipeline\n"
            f"pipe = pipeline(\"text-classification\", model=\"{path}\")\n"
            f"pipe(\"what's my balance\")")


def markdown(report: BenchmarkReport, choice: dict[str, Any], budget: Budget) -> str:
    sure = (f" at {budget.confidence:.0%} confidence (the drop plus its paired standard "
            "errors)" if budget.confidence > 0.5 else "")
    limits = [f"at most {budget.max_accuracy_drop} points of validation accuracy below the "
              f"teacher{sure}"]
    if budget.max_latency_ms is not None:
        limits.append(f"p50 at most {budget.max_latency_ms} ms")
    if budget.max_size_mb is not None:
        limits.append(f"size at most {budget.max_size_mb} MB")
    return "\n".join([
        "# slimformer optimize", "", f"Budget: {'; '.join(limits)}.", "",
        f"Chosen: **{choice['name']}**: {choice['reason']}. {test_line(choice)}", "",
        *table(report, choice), "",
        "Validation accuracy chooses; each variant's timing comes from its own process, in "
        "rounds (see benchmark/report.md for throughput, memory and the machine). Accuracies "
        "are with each variant's out-of-scope fallback where the data has an out-of-scope "
        "label (benchmark/report.md has them without).", "",
        "![validation accuracy vs latency](report.png)", "",
        "## Use it", "", "```python", usage(choice), "```", ""])


def plot(report: BenchmarkReport, choice: dict[str, Any], path: Path) -> None:
    """Validation accuracy vs p50 latency, size as bubble area, the Pareto front drawn and the
    chosen variant marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.variants
    biggest = max(r["size_mb"] for r in rows) or 1.0
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for row in rows:
        x, y = row["latency_ms"]["p50"], validation_accuracy(row)
        chosen = row["name"] == choice["name"]
        ax.scatter(x, y, s=1500 * row["size_mb"] / biggest + 40, alpha=0.5,
                   edgecolors="red" if chosen else "black", linewidths=2.5 if chosen else 0.8)
    label_points(ax, [(r["latency_ms"]["p50"], validation_accuracy(r)) for r in rows],
                 [r["name"] + (" (chosen)" if r["name"] == choice["name"] else "")
                  for r in rows])
    front = sorted((r for r in rows if r["name"] in choice["pareto_front"]),
                   key=lambda r: r["latency_ms"]["p50"])
    ax.plot([r["latency_ms"]["p50"] for r in front], [validation_accuracy(r) for r in front],
            linestyle="--", color="grey", linewidth=1, label="Pareto front")
    ax.set_xlabel("Latency p50 (ms, batch 1, per-process; log scale)")
    ax.set_ylabel("Validation accuracy (%)")
    ax.set_title("Variants: validation accuracy vs latency; bubble area = size")
    ax.legend(loc="lower right")
    ax.margins(x=0.25, y=0.25)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def write_optimize_report(report: BenchmarkReport, choice: dict[str, Any], budget: Budget,
                          run: Path) -> None:
    (run / "best.json").write_text(json.dumps(choice, indent=2, default=str))
    (run / "report.json").write_text(json.dumps({"choice": choice, "budget": vars(budget),
                                                 "benchmark": report.to_dict()}, indent=2,
                                                default=str))
    (run / "report.md").write_text(markdown(report, choice, budget))
    plot(report, choice, run / "report.png")
