"""The benchmark's settings (light to import: the CLI builds its parser from them)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class BenchmarkSettings:
    threads: int = field(default=2, metadata={"help": "intra-op threads for every variant"})
    latency_queries: int = field(default=300, metadata={"help": "distinct test queries timed "
                                                        "one at a time (batch 1)"})
    warmup_queries: int = field(default=20, metadata={"help": "untimed queries run first"})
    batch_size: int = field(default=32, metadata={"help": "batch size for accuracy and "
                                                  "throughput"})
    throughput_batches: int = field(default=10, metadata={"help": "timed batches per variant"})
    rounds: int = field(default=3, metadata={"help": "rounds of timing; each variant's "
                                             "process takes one turn per round (at least 3)"})
    measure_memory: bool = field(default=True, metadata={"help": "peak memory of each "
                                                         "variant's process"})
    seed: int = 0
