"""Latency and throughput, each variant in a process of its own, the processes taking turns.

On a small machine every loaded model owns thread pools (torch's OpenMP, one ONNX Runtime pool
per session) that spin after each call; timing several variants in one process makes each one
fight the others' pools and inflated latencies 2-6x. So each variant is loaded alone in a
worker process (`slimformer.serving.worker`), as it is deployed, and the workers take turns
in rounds (A B C, A B C, ...), each turn with its own warm-up. A variant's p50 is the median
of its round p50s, and its spread the range of those round p50s: two variants differ
measurably only when their ranges do not overlap.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail
from slimformer.serving.processes import close_all, start_workers

logger = logging.getLogger(__name__)

MAX_SPREAD = 0.15  # a variant whose round p50s differ by more is not reliably timed
MAX_OTHER_LOAD = 0.25  # share of the cores other processes may use before timings are suspect
# Between turns, so the last worker's spinning thread pools go quiet. A single-threaded
# worker has no pool (torch and ONNX Runtime run on the calling thread), so nothing to wait for.
PAUSE_S = 0.2
NO_DIFFERENCE = "no measurable difference"


@dataclass
class Turn:
    """One variant's turn in one round: which process ran it, and when."""

    round: int
    variant: str
    pid: int
    start: float
    end: float


@dataclass
class SpeedResult:
    """Per variant: latency stats, throughput; plus the log of turns and the machine's load."""

    latency_ms: dict[str, dict[str, Any]] = field(default_factory=dict)
    throughput_qps: dict[str, dict[str, Any]] = field(default_factory=dict)
    turns: list[Turn] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    peak_memory_mb: dict[str, float] = field(default_factory=dict)


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"mean": float(ms.mean()), "std": float(ms.std()),
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "n": int(len(ms))}


def round_summary(round_values: list[float]) -> dict[str, Any]:
    """Median of the rounds, their range, and the range relative to the median."""
    middle = statistics.median(round_values)
    low, high = min(round_values), max(round_values)
    return {"median": middle, "min": low, "max": high, "rounds": list(round_values),
            "spread": (high - low) / middle if middle else 0.0}


def latency_summary(rounds: list[list[float]]) -> dict[str, Any]:
    """Stats over every timed query, with p50 replaced by the median of the round p50s."""
    overall = latency_stats([s for r in rounds for s in r])
    per_round = round_summary([latency_stats(r)["p50"] for r in rounds])
    return {**overall, "p50": per_round["median"], "p50_min": per_round["min"],
            "p50_max": per_round["max"], "p50_rounds": per_round["rounds"],
            "spread": per_round["spread"]}


def throughput_summary(rounds: list[list[float]], batch_rows: int) -> dict[str, Any]:
    per_round = round_summary([batch_rows / sum(r) for r in rounds])
    return {"qps": per_round["median"], "min": per_round["min"], "max": per_round["max"],
            "rounds": per_round["rounds"], "spread": per_round["spread"]}


def speed_verdict(fast: dict[str, Any], slow: dict[str, Any]) -> str | None:
    """'faster', 'slower' or NO_DIFFERENCE: p50 of `fast` against `slow`, by their ranges
    (None for figures without ranges, e.g. a report of an older slimformer)."""
    if not {"p50_min", "p50_max"} <= set(fast) & set(slow):
        return None
    if fast["p50_max"] < slow["p50_min"]:
        return "faster"
    if fast["p50_min"] > slow["p50_max"]:
        return "slower"
    return NO_DIFFERENCE


# ---------------------------------------------------------------------------------------------
# The machine: how busy it was while we timed


def load_average() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def busy_cpu_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU time of this process and the given workers (those still alive)."""
    import psutil

    total = 0.0
    for pid in [os.getpid(), *pids]:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


class LoadMonitor:
    """How many cores other processes kept busy while we timed (ours are subtracted)."""

    def __init__(self, pids: list[int]):
        self.pids = pids
        self.start_wall = time.perf_counter()
        self.start_busy = busy_cpu_seconds()
        self.start_ours = tree_cpu_seconds(pids)

    def other_cores(self) -> float:
        wall = time.perf_counter() - self.start_wall
        busy = busy_cpu_seconds() - self.start_busy
        ours = tree_cpu_seconds(self.pids) - self.start_ours
        return max(0.0, (busy - ours) / wall) if wall > 0 else 0.0


def machine_state(load_before: list[float], other_cores: float) -> dict[str, Any]:
    """How busy the machine was. The verdict rests on the CPU time other processes took while
    we timed (ours subtracted): the 1-minute load average also counts this run's own work
    (the accuracy pass, a compression step just before), so it is recorded, not judged."""
    cores = os.cpu_count() or 1
    load_after = load_average()
    reasons = []
    if other_cores > cores * MAX_OTHER_LOAD:
        reasons.append(f"other processes kept {other_cores:.2f} of {cores} cores busy "
                       "while timing")
    return {"cores": cores, "load_before": load_before, "load_after": load_after,
            "other_cores_busy": round(other_cores, 3), "busy": bool(reasons),
            "busy_reasons": reasons}


# ---------------------------------------------------------------------------------------------
# Rounds


def time_rounds(folders: dict[str, tuple[Path, str]], threads: int, rounds: int,
                warmup: list[list[str]], latency: list[list[str]],
                throughput: list[list[str]] | None = None, memory: bool = False,
                load_before: list[float] | None = None, progress: bool = True) -> SpeedResult:
    """Each variant (name -> (folder, kind)) timed in its own process, rounds A B C, A B C.

    Every turn runs the warm-up batches, then the latency batches (and the throughput batches),
    all untouched by the other variants, whose processes sleep meanwhile.
    """
    from tqdm.auto import tqdm

    if rounds < 1:
        fail(f"rounds must be at least 1, got {rounds}")
    load_before = load_average() if load_before is None else load_before
    result = SpeedResult()
    latency_rounds: dict[str, list[list[float]]] = {name: [] for name in folders}
    throughput_rounds: dict[str, list[list[float]]] = {name: [] for name in folders}
    workers = start_workers(folders, threads)
    try:
        monitor = LoadMonitor([w.pid for w in workers])
        bar = tqdm(total=rounds * len(workers), desc="timing (per-process rounds)",
                   leave=False, disable=not progress)
        for round_index in range(rounds):
            for worker in workers:
                if threads > 1:
                    time.sleep(PAUSE_S)
                start = time.time()
                answer = worker.request(op="time", warmup=warmup, batches=latency)
                latency_rounds[worker.name].append(answer["seconds"])
                if throughput:
                    answer = worker.request(op="time", warmup=throughput[:1],
                                            batches=throughput)
                    throughput_rounds[worker.name].append(answer["seconds"])
                result.turns.append(Turn(round_index, worker.name, answer["pid"], start,
                                         time.time()))
                bar.update()
        bar.close()
        result.machine = machine_state(load_before, monitor.other_cores())
        if memory:
            for worker in workers:
                result.peak_memory_mb[worker.name] = worker.request(op="memory")["peak_rss_mb"]
    finally:
        close_all(workers)
    for name in folders:
        result.latency_ms[name] = latency_summary(latency_rounds[name])
        if throughput:
            rows = sum(len(b) for b in throughput)
            result.throughput_qps[name] = throughput_summary(throughput_rounds[name], rows)
    return result


def compare_folders(fast: tuple[Path, str], slow: tuple[Path, str], queries: list[str],
                    threads: int, rounds: int = 3, warmup: int = 20) -> dict[str, Any]:
    """p50 of `fast` against `slow`, per-process rounds: ratio (slow / fast) and verdict."""
    result = time_rounds({"fast": fast, "slow": slow}, threads, rounds,
                         [[q] for q in queries[:warmup]], [[q] for q in queries[warmup:]],
                         progress=False)
    return {**speed_check(result.latency_ms["fast"], result.latency_ms["slow"]),
            "busy": result.machine["busy"]}


def speed_check(fast: dict[str, Any], slow: dict[str, Any]) -> dict[str, Any]:
    """Two timings as compare_folders reports them: the ratio of their p50s (slow / fast),
    the verdict by their ranges, and both p50s."""
    return {"speedup": slow["p50"] / fast["p50"], "verdict": speed_verdict(fast, slow),
            "fast_p50_ms": fast["p50"], "slow_p50_ms": slow["p50"]}
