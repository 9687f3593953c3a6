"""The load test's report: loadtest.json, loadtest.md (one row per level) and loadtest.png
(p99 latency against throughput, one line per service)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def cell(value: Any, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(result: dict[str, Any]) -> str:
    env = result.get("environment", {})
    cpu = env.get("cpu", {})
    lines = [f"# Load test: {result.get('name') or result['url']}", "",
             f"Closed loop with wrk (1 thread), {result['queries']} distinct queries cycled, "
             f"{result['settings']['duration_s']:g} s per level after "
             f"{result['settings']['warmup_s']:g} s of warm-up, on {cpu.get('model', '?')} "
             f"({cpu.get('cores', '?')} cores; the server and wrk share them).", "",
             "| Concurrency | Requests/s | p50 ms | p95 ms | p99 ms | Non-2xx | Mean batch | "
             "Cache hits | Server CPU (cores) | wrk CPU (cores) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for level in result["levels"]:
        hits = level.get("cache_hit_rate")
        lines.append(
            f"| {level['concurrency']} | {level['rps']:.0f} | {level['p50_ms']:.2f} | "
            f"{level['p95_ms']:.2f} | {level['p99_ms']:.2f} | {int(level['non_2xx'])} | "
            f"{cell(level.get('mean_batch'), 1)} | "
            f"{'-' if hits is None else f'{100 * hits:.0f}%'} | "
            f"{cell(level.get('server_cpu_cores'), 2)} | {cell(level['client_cpu_cores'], 2)} |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict[str, Any]], path: Path) -> None:
    """p99 against requests/s, a line per service, each point labelled by its concurrency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    for result in results:
        levels = result["levels"]
        xs, ys = [lv["rps"] for lv in levels], [lv["p99_ms"] for lv in levels]
        axes.plot(xs, ys, marker="o", label=result.get("name") or result["url"])
        for level, x, y in zip(levels, xs, ys):
            axes.annotate(f"c={level['concurrency']}", (x, y), textcoords="offset points",
                          xytext=(4, 4), fontsize=7)
    axes.set_xlabel("requests per second")
    axes.set_ylabel("p99 latency (ms)")
    axes.set_yscale("log")
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8)
    axes.set_title("p99 latency against throughput (closed loop)")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(result: dict[str, Any], folder: Path) -> None:
    (folder / "loadtest.json").write_text(json.dumps(result, indent=2) + "\n")
    (folder / "loadtest.md").write_text(markdown(result))
    plot([result], folder / "loadtest.png")
