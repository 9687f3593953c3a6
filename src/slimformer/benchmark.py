"""Side-by-side benchmark of classifier variants: accuracy, size, latency, throughput, memory.

Latency and throughput are measured interleaved (each query runs on every variant in turn,
in a rotating order), so the machine's noise hits all variants alike. Peak memory is the
peak resident set of a fresh process that loads and runs one variant alone.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from tqdm.auto import tqdm

from slimformer.data import LABEL_COLUMN, TEXT_COLUMN, label_names
from slimformer.errors import fail
from slimformer.metrics import clinc_scores
from slimformer.variants import Variant, scratch_dir

LIBRARIES = ("torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx",
             "tokenizers", "numpy", "datasets", "evaluate")
CPU_FLAGS = ("avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16",
             "fma", "sse4_2", "asimd")


@dataclass
class BenchmarkSettings:
    threads: int = field(default=2, metadata={"help": "intra-op threads for every variant"})
    latency_queries: int = field(default=300, metadata={"help": "distinct test queries timed "
                                                        "one at a time (batch 1)"})
    warmup_queries: int = field(default=20, metadata={"help": "untimed queries run first"})
    batch_size: int = field(default=32, metadata={"help": "batch size for accuracy and "
                                                  "throughput"})
    throughput_batches: int = field(default=10, metadata={"help": "timed batches per variant"})
    measure_memory: bool = field(default=True, metadata={"help": "peak memory per variant in "
                                                         "a fresh process"})
    seed: int = 0


def set_threads(threads: int) -> None:
    """Pin intra-op threads for torch (if loaded) and for BLAS/OpenMP in child processes."""
    if threads < 1:
        fail(f"threads must be at least 1, got {threads}")
    os.environ["OMP_NUM_THREADS"] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def check_labels(variant: Variant) -> None:
    """A variant's label ids must be CLINC150's (Hub order), or accuracy means nothing."""
    labels = variant.labels
    expected = label_names()
    if labels is None:
        return
    if len(labels) != len(expected):
        fail(f"variant {variant.name!r} has {len(labels)} labels; CLINC150 has {len(expected)}")
    generic = all(label == f"LABEL_{i}" for i, label in enumerate(labels))
    if not generic and labels != expected:
        wrong = next(i for i, (a, b) in enumerate(zip(labels, expected)) if a != b)
        fail(f"variant {variant.name!r}: label id {wrong} is {labels[wrong]!r}, CLINC150's "
             f"is {expected[wrong]!r} (its id2label is not in the Hub's order)")


def measure_accuracy(variant: Variant, test: Dataset, batch_size: int) -> dict[str, float]:
    predictions = []
    texts = test[TEXT_COLUMN]
    for start in tqdm(range(0, len(texts), batch_size), desc=f"accuracy {variant.name}",
                      leave=False):
        logits = variant.predict_logits(texts[start:start + batch_size])
        predictions.append(np.argmax(logits, axis=-1))
    return clinc_scores(np.concatenate(predictions), test[LABEL_COLUMN])


def rotated(items: list[Any], shift: int) -> list[Any]:
    shift %= len(items)
    return items[shift:] + items[:shift]


def time_interleaved(variants: list[Variant], batches: list[list[str]],
                     desc: str) -> dict[str, list[float]]:
    """Seconds per batch per variant; variants take turns on each batch, order rotating."""
    times: dict[str, list[float]] = {v.name: [] for v in variants}
    for i, batch in enumerate(tqdm(batches, desc=desc, leave=False)):
        for variant in rotated(variants, i):
            start = time.perf_counter()
            variant.predict_logits(batch)
            times[variant.name].append(time.perf_counter() - start)
    return times


def latency_stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"mean": float(ms.mean()), "std": float(ms.std()),
            "p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
            "p99": float(np.percentile(ms, 99)), "n": int(len(ms))}


def pick_queries(test: Dataset, count: int, seed: int) -> list[str]:
    """`count` distinct test queries in a fixed random order."""
    unique = list(dict.fromkeys(test[TEXT_COLUMN]))
    if count > len(unique):
        fail(f"asked for {count} distinct queries; the test split has {len(unique)}")
    order = np.random.default_rng(seed).permutation(len(unique))
    return [unique[i] for i in order[:count]]


def measure_latency(variants: list[Variant], test: Dataset,
                    settings: BenchmarkSettings) -> dict[str, dict[str, float]]:
    queries = pick_queries(test, settings.warmup_queries + settings.latency_queries,
                           settings.seed)
    warmup, timed = queries[:settings.warmup_queries], queries[settings.warmup_queries:]
    time_interleaved(variants, [[q] for q in warmup], "warm-up")
    times = time_interleaved(variants, [[q] for q in timed], "latency (batch 1)")
    return {name: latency_stats(t) for name, t in times.items()}


def measure_throughput(variants: list[Variant], test: Dataset,
                       settings: BenchmarkSettings) -> dict[str, float]:
    queries = pick_queries(test, min(len(test), settings.batch_size * settings.throughput_batches),
                           settings.seed + 1)
    batches = [queries[i:i + settings.batch_size]
               for i in range(0, len(queries), settings.batch_size)]
    times = time_interleaved(variants, batches,
                             f"throughput (batch {settings.batch_size})")
    total = sum(len(b) for b in batches)
    return {name: total / sum(t) for name, t in times.items()}


def measure_peak_memory(variant: Variant, queries: list[str], threads: int) -> float:
    """Peak RSS (MB) of a fresh process that imports what the variant needs, loads and runs it."""
    folder, kind = variant.reloadable(scratch_dir())
    command = [sys.executable, "-m", "slimformer.memory_probe", str(folder), kind, str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(command, input=json.dumps(queries), capture_output=True, text=True,
                            env=env, check=False)
    if result.returncode != 0:
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        fail(f"memory probe of {variant.name!r} failed: {tail}")
    return json.loads(result.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def cpu_info() -> dict[str, Any]:
    model, flags = platform.processor() or "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("unknown", "", platform.processor()):
                model = line.split(":", 1)[1].strip()
            elif line.startswith(("flags", "Features")):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {"model": model, "cores": os.cpu_count(), "flags": [f for f in CPU_FLAGS if f in flags]}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def environment(threads: int) -> dict[str, Any]:
    return {"threads": threads, "cpu": cpu_info(), "platform": platform.platform(),
            "libraries": library_versions(),
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def benchmark_variants(variants: list[Variant], test: Dataset,
                       settings: BenchmarkSettings | None = None) -> dict[str, Any]:
    """Every figure for every variant, measured side by side; returns the report dict."""
    settings = settings or BenchmarkSettings()
    if not variants:
        fail("no variants to benchmark")
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
        fail(f"variant names must be unique: {', '.join(names)}")
    set_threads(settings.threads)
    for variant in variants:
        check_labels(variant)
    results = {v.name: {**v.info(), "size_mb": v.size_mb()} for v in variants}
    for variant in variants:
        results[variant.name].update(measure_accuracy(variant, test, settings.batch_size))
    for name, stats in measure_latency(variants, test, settings).items():
        results[name]["latency_ms"] = stats
    for name, qps in measure_throughput(variants, test, settings).items():
        results[name]["throughput_qps"] = qps
    if settings.measure_memory:
        queries = pick_queries(test, min(50, len(test)), settings.seed)
        for variant in tqdm(variants, desc="peak memory", leave=False):
            results[variant.name]["peak_memory_mb"] = measure_peak_memory(
                variant, queries, settings.threads)
    return {"environment": environment(settings.threads), "settings": asdict(settings),
            "test_rows": len(test), "variants": list(results.values())}
