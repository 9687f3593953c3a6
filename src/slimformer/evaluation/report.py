"""Benchmark reports: report.json, report.md (with ratios to a baseline) and report.png."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slimformer.errors import fail
from slimformer.evaluation.paired import difference_to, interval_text
from slimformer.evaluation.report_data import BenchmarkReport, VariantRow
from slimformer.serving.timing import MAX_SPREAD, NO_DIFFERENCE, speed_verdict

# (column title, getter, decimals); every figure gets a ratio column against the baseline.
FIGURES = (
    ("Accuracy %", lambda r: 100 * r["accuracy"], 2),
    ("Size MB", lambda r: r["size_mb"], 1),
    ("p50 ms", lambda r: r["latency_ms"]["p50"], 2),
    ("p99 ms", lambda r: r["latency_ms"]["p99"], 2),
    ("Throughput q/s", lambda r: r["throughput_qps"], 0),
    ("Memory MB", lambda r: r.get("peak_memory_mb"), 0),
)


def find_baseline(report: BenchmarkReport, baseline: str | None) -> VariantRow:
    variants = report.variants
    if baseline is None:
        return variants[0]
    for row in variants:
        if row["name"] == baseline:
            return row
    fail(f"baseline {baseline!r} is not a benchmarked variant: "
         f"{', '.join(r['name'] for r in variants)}")


def add_ratios(report: BenchmarkReport, baseline: str | None) -> BenchmarkReport:
    """Each figure's ratio to the baseline (variant / baseline), stored per variant, whether
    its p50 differs measurably from the baseline's (their round ranges apart), and its test
    accuracy's paired difference to the baseline's with a 95% interval (paired.py)."""
    base = find_baseline(report, baseline)
    report.baseline = base["name"]
    for row in report.variants:
        row["ratios"] = {}
        for title, get, _ in FIGURES:
            value, ref = get(row), get(base)
            row["ratios"][title] = value / ref if value is not None and ref else None
        row["accuracy_delta_points"] = 100 * (row["accuracy"] - base["accuracy"])
        row["test_difference"] = (None if row is base
                                  else difference_to(row, base, report.test_rows))
        row["speed_vs_baseline"] = ("baseline" if row is base
                                    else speed_verdict(row["latency_ms"], base["latency_ms"]))
    return report


def speed_phrase(row: VariantRow) -> str:
    """The p50 ratio in words: a speed-up only when the round ranges do not overlap."""
    verdict, ratio = row.get("speed_vs_baseline"), (row.get("ratios") or {}).get("p50 ms")
    if verdict == "baseline":
        return verdict
    if verdict is None or ratio is None:  # a report without round ranges claims nothing
        return "n/a"
    if verdict == "faster":
        return f"{1 / ratio:.2f}× faster"
    if verdict == "slower":
        return f"{ratio:.2f}× slower"
    return NO_DIFFERENCE


def p50_cell(row: VariantRow) -> str:
    lat = row["latency_ms"]
    if "p50_min" not in lat:
        return fmt(lat["p50"], 2)
    return f"{lat['p50']:.2f} ({lat['p50_min']:.2f}–{lat['p50_max']:.2f})"


def timing_cell(row: VariantRow) -> str:
    if row.get("timing_reliable", True):
        return "ok"
    return "⚠ not reliable: " + "; ".join(row.get("timing_notes", []))


def fmt(value: float | None, decimals: int) -> str:
    return "n/a" if value is None else f"{value:,.{decimals}f}"


def markdown_table(report: BenchmarkReport) -> str:
    header = ["Variant"]
    for title, _, _ in FIGURES:
        header += [title, "×base"]
        if title == "p50 ms":
            header += ["vs baseline"]
    header += ["Timing"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in report.variants:
        cells = [row["name"]]
        for title, get, decimals in FIGURES:
            ratio = row["ratios"][title]
            value = p50_cell(row) if title == "p50 ms" else fmt(get(row), decimals)
            cells += [value, "n/a" if ratio is None else f"{ratio:.2f}×"]
            if title == "p50 ms":
                cells += [speed_phrase(row)]
        cells += [timing_cell(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def percent(value: float | None) -> str:
    return "n/a" if value is None or value != value else f"{100 * value:.2f}"


def fallback_cell(row: VariantRow) -> str:
    """Test scores with the fallback, and its rule (n/a: the data has no out-of-scope label)."""
    found = row.get("with_fallback")
    if not found:
        return "n/a"
    return (f"{percent(found['accuracy'])} / {percent(found['in_scope_accuracy'])} / "
            f"{percent(found['oos_recall'])} ({row['fallback']['score']} < "
            f"{row['fallback']['threshold']:.3g})")


def difference_cell(row: VariantRow, baseline: str = "baseline") -> str:
    """A row's paired test difference to the baseline, or `baseline` in the baseline's own."""
    if row.get("speed_vs_baseline") == "baseline":
        return baseline
    return interval_text(row.get("test_difference"))


def machine_line(env: dict[str, Any]) -> str:
    machine = env.get("machine") or {}
    if not machine:
        return ""
    state = ("BUSY: " + "; ".join(machine["busy_reasons"]) if machine["busy"]
             else "idle apart from this benchmark")
    return (f"Load average before {machine['load_before']}, after {machine['load_after']} "
            f"(the latter includes this run); other processes used "
            f"{machine['other_cores_busy']:.2f} cores while timing: {state}.")


def markdown_report(report: BenchmarkReport) -> str:
    env = report.environment
    libs = ", ".join(f"{k} {v}" for k, v in env["libraries"].items())
    settings = report.settings
    detail = ["| Variant | In-scope acc. % | OOS recall % | With the out-of-scope fallback: "
              "acc. / in-scope / OOS recall % | Test acc. vs baseline, pt (95% interval) | "
              "p95 ms | mean ± std ms |",
              "|---|---|---|---|---|---|---|"]
    for row in report.variants:
        lat = row["latency_ms"]
        detail.append(f"| {row['name']} | {percent(row['in_scope_accuracy'])} | "
                      f"{percent(row['oos_recall'])} | {fallback_cell(row)} | "
                      f"{difference_cell(row)} | "
                      f"{lat['p95']:.2f} | {lat['mean']:.2f} ± {lat['std']:.2f} |")
    return "\n".join([
        "# Benchmark report",
        "",
        f"Baseline: **{report.baseline}**. Ratios are variant / baseline (latency below 1× is "
        "faster; throughput above 1× is faster).",
        "",
        markdown_table(report),
        "",
        *detail,
        "",
        f"Accuracy over {report.test_rows} test rows, in one process. Latency, throughput "
        f"and memory: each variant alone in a process of its own, the processes taking turns "
        f"in {settings.get('rounds', 1)} rounds; each turn runs {settings['warmup_queries']} "
        f"warm-up queries, then {settings['latency_queries']} distinct test queries at batch 1 "
        f"(tokenization included) and throughput at batch {settings['batch_size']}. p50 is the "
        "median of the round p50s, with their range in brackets; a variant is called faster or "
        "slower than the baseline only when the ranges do not overlap. Timings whose rounds "
        f"differ by more than {100 * MAX_SPREAD:.0f}%, or taken on a busy machine, are marked "
        "not reliable. Memory is the peak RSS of the variant's process. The out-of-scope "
        "fallback answers the out-of-scope label when the model's confidence is below a "
        "threshold fitted on the validation split (never on test). The difference to the "
        "baseline's test accuracy is paired over the same test rows (with both fallbacks "
        "where both have one); its 95% interval shows how much the choice of test queries "
        "alone could move it.",
        "",
        f"Machine: {env['cpu']['model']} ({env['cpu']['cores']} cores; flags "
        f"{', '.join(env['cpu']['flags']) or 'n/a'}; VNNI {yes(env['cpu'].get('vnni'))}, "
        f"AMX {yes(env['cpu'].get('amx'))}), {env['threads']} threads, "
        f"{env['platform']}, {env['date']}. {machine_line(env)}",
        "",
        f"Libraries: {libs}.",
        "",
        "![accuracy vs latency](report.png)",
        "",
    ])


def yes(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "no")


def plot_report(report: BenchmarkReport, path: Path) -> None:
    """Accuracy vs p50 latency, one bubble per variant sized by model size (the book's plot);
    the horizontal bar is the range of the round p50s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    rows = report.variants
    biggest = max(r["size_mb"] for r in rows) or 1.0
    for row in rows:
        lat = row["latency_ms"]
        x, y = lat["p50"], 100 * row["accuracy"]
        ax.scatter(x, y, s=2000 * row["size_mb"] / biggest + 40, alpha=0.5,
                   edgecolors="black", linewidths=0.8)
        if "p50_min" in lat:
            ax.errorbar(x, y, xerr=[[x - lat["p50_min"]], [lat["p50_max"] - x]], fmt="none",
                        ecolor="black", capsize=3, linewidth=0.8)
    label_points(ax, [(r["latency_ms"]["p50"], 100 * r["accuracy"]) for r in rows],
                 [f"{r['name']} ({r['size_mb']:.0f} MB)" for r in rows])
    base = find_baseline(report, report.baseline)
    ax.axvline(base["latency_ms"]["p50"], linestyle="--", color="grey", linewidth=0.8)
    ax.set_xlabel("Latency p50 (ms, batch 1; log scale)")
    ax.set_ylabel("Accuracy (%)")
    busy = (report.environment.get("machine") or {}).get("busy")
    ax.set_title(f"Accuracy vs latency ({report.environment['threads']} threads); "
                 "bubble area = size" + ("\nMACHINE BUSY: timings not reliable" if busy else ""))
    ax.margins(x=0.25, y=0.25)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def label_points(ax, points: list[tuple[float, float]], names: list[str]) -> None:
    """Number each bubble and list the numbers' names beside the axes, on a log latency axis.
    A student's int8 siblings sit within a few hundredths of a millisecond of each other, ten
    times left of the teacher: names written at the bubbles overlapped."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    ax.xaxis.set_minor_formatter(plain)
    ax.tick_params(axis="x", which="minor", labelsize=7)
    for number, (x, y) in enumerate(points, 1):
        ax.annotate(str(number), (x, y), ha="center", va="center", fontsize=8, weight="bold")
    ax.text(1.02, 1.0, "\n".join(f"{n:>2}  {name}" for n, name in enumerate(names, 1)),
            transform=ax.transAxes, va="top", fontsize=7, family="monospace")


def write_report(report: BenchmarkReport, output_dir: str | Path,
                 baseline: str | None = None) -> dict[str, Path]:
    """Write report.json, report.md and report.png; returns their paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    add_ratios(report, baseline)
    paths = {"json": out / "report.json", "md": out / "report.md", "png": out / "report.png"}
    paths["json"].write_text(json.dumps(report.to_dict(), indent=2))
    paths["md"].write_text(markdown_report(report))
    plot_report(report, paths["png"])
    return paths
