"""Closed-loop load on a running `/predict` service: wrk at several concurrency levels.

Each level runs wrk (Debian's `wrk`, C, one thread) with `concurrency` connections, each
sending a test query, waiting for the answer, then sending the next, for `duration_s` seconds,
after a short warm-up. A Lua script cycles through the queries and reports requests, errors
and the latency percentiles. The server and wrk share this machine's cores: each level records
the CPU time both used (the server's by its process tree, when its pid is given), and the
service's own /metrics before and after (batch sizes, cache hits).
"""

from __future__ import annotations

import json
import logging
import re
import resource
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from slimformer.errors import fail

logger = logging.getLogger(__name__)

SCRIPT = """
local bodies = {}
for line in io.lines(os.getenv("SLIMFORMER_BODIES")) do bodies[#bodies + 1] = line end
local counter = 0
setup = function(thread) thread:set("offset", counter); counter = counter + 977 end
init = function(args) i = offset or 0 end
request = function()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SLIMFORMER %d %d %d %d %.1f %.1f %.1f %.1f %.1f\\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean,
    latency.max))
end
"""


@dataclass
class LoadSettings:
    url: str = "http://127.0.0.1:8080"
    concurrency: list[int] = field(default_factory=lambda: [1, 8, 32, 128])
    duration_s: float = 10.0
    warmup_s: float = 2.0
    server_pid: int | None = None  # to record the server's CPU time (its process tree)
    timeout_s: float = 10.0


def check_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        fail("the load test needs wrk (Debian: apt-get install wrk)")
    return path


def scrape(url: str) -> dict[str, float]:
    """The service's counters that a level's report compares before and after ({} for a
    service without slimformer's /metrics, e.g. a hand-written one)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(url + "/metrics", timeout=10) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("slimformer_batch_size_sum", "slimformer_batch_size_count",
                               "slimformer_cache_hits_total", "slimformer_cache_misses_total"):
                found[sample.name] = sample.value
    return found


def process_tree_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def run_wrk(wrk: str, url: str, bodies: Path, concurrency: int, seconds: float,
            timeout_s: float) -> tuple[dict[str, float], float]:
    """wrk's figures for one run, and the CPU seconds wrk itself used."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(SCRIPT)
    command = [wrk, "-t", "1", "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s",
               "--timeout", f"{timeout_s:g}s", "-s", script.name, url + "/predict"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)  # wrk is the only child waited for
    done = subprocess.run(command, capture_output=True, text=True,
                          env={"SLIMFORMER_BODIES": str(bodies), "PATH": "/usr/bin:/bin"})
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    process, out, err = done, done.stdout, done.stderr
    Path(script.name).unlink(missing_ok=True)
    match = re.search(r"^SLIMFORMER (.*)$", out, flags=re.M)
    if process.returncode != 0 or match is None:
        fail(f"wrk failed against {url}: {(err or out).strip()[:300]}")
    n, micros, status_errors, socket_errors, p50, p95, p99, mean, peak = (
        float(x) for x in match.group(1).split())
    seconds_run = micros / 1e6
    return {"requests": n, "seconds": seconds_run, "rps": n / seconds_run,
            "non_2xx": status_errors, "socket_errors": socket_errors, "p50_ms": p50 / 1000,
            "p95_ms": p95 / 1000, "p99_ms": p99 / 1000, "mean_ms": mean / 1000,
            "max_ms": peak / 1000}, cpu


def write_bodies(texts: list[str], folder: Path) -> Path:
    path = folder / "bodies.jsonl"
    path.write_text("".join(json.dumps({"inputs": t}) + "\n" for t in texts))
    return path


def check_service(url: str) -> None:
    """wrk is here and the service answers /health with 200."""
    check_wrk()
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=10) as reply:
            status = reply.status
    except urllib.error.HTTPError as err:
        status = err.code
    except OSError as err:
        fail(f"no service answers at {url}: {getattr(err, 'reason', err)}")
    if status != 200:
        fail(f"{url}/health answers {status}: the service is not ready")


def load_test(settings: LoadSettings, texts: list[str]) -> dict[str, Any]:
    """One row per concurrency level; the server must be up."""
    if not texts:
        fail("no queries to send")
    check_service(settings.url)
    wrk, url = check_wrk(), settings.url.rstrip("/")
    levels = []
    with tempfile.TemporaryDirectory() as tmp:
        bodies = write_bodies(texts, Path(tmp))
        for concurrency in settings.concurrency:
            if settings.warmup_s > 0:
                run_wrk(wrk, url, bodies, concurrency, settings.warmup_s, settings.timeout_s)
            before, server_before = scrape(url), process_tree_cpu(settings.server_pid)
            figures, client_cpu = run_wrk(wrk, url, bodies, concurrency, settings.duration_s,
                                          settings.timeout_s)
            after, server_after = scrape(url), process_tree_cpu(settings.server_pid)
            figures.update(level_service_figures(before, after))
            figures.update(concurrency=concurrency,
                           client_cpu_cores=client_cpu / figures["seconds"],
                           server_cpu_cores=(server_after - server_before) / figures["seconds"]
                           if settings.server_pid else None)
            logger.info("concurrency %d: %.0f req/s, p50 %.2f ms, p99 %.2f ms, %d non-2xx",
                        concurrency, figures["rps"], figures["p50_ms"], figures["p99_ms"],
                        figures["non_2xx"])
            levels.append(figures)
    return {"url": url, "queries": len(texts), "levels": levels,
            "settings": {k: v for k, v in vars(settings).items() if k != "server_pid"}}


def level_service_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    batches = delta("slimformer_batch_size_count")
    hits, misses = delta("slimformer_cache_hits_total"), delta("slimformer_cache_misses_total")
    return {"mean_batch": delta("slimformer_batch_size_sum") / batches if batches else None,
            "cache_hit_rate": hits / (hits + misses) if hits + misses else None}
