"""The HTTP service's settings, checked before anything loads (the same ranges as every step)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from slimformer.checks import check_ranges
from slimformer.errors import fail


@dataclass
class ServeSettings:
    host: str = field(default="127.0.0.1", metadata={
        "help": "address to listen on (0.0.0.0 behind a load balancer)"})
    port: int = field(default=8080, metadata={"help": "TCP port"})
    # 2 x 1 served the 3-layer int8 fastest on 2 cores from concurrency 8 up (docs/serving.md)
    workers: int = field(default=2, metadata={
        "help": "server processes, each with its own model copy (one per core)"})
    threads: int = field(default=1, metadata={"help": "model threads per worker"})
    max_batch_size: int = field(default=32, metadata={
        "help": "dynamic batching: the most texts one model call runs"})
    max_wait_ms: float = field(default=0.0, metadata={
        "help": "dynamic batching: how long a batch waits for more requests once the model "
                "is free; 0 runs at once what is queued (requests that arrived while the "
                "model was busy still run together), a window only adds latency at low load"})
    max_queue: int = field(default=256, metadata={
        "help": "texts waiting for the model beyond which a request gets 429 at once"})
    max_client_batch: int = field(default=32, metadata={
        "help": "the most texts one request may send (413 beyond)"})
    max_text_chars: int = field(default=2000, metadata={
        "help": "the longest text accepted, in characters (413 beyond; the model itself "
                "truncates to its max length in tokens)"})
    max_body_bytes: int = field(default=1_000_000, metadata={
        "help": "the largest request body (413 beyond)"})
    cache_size: int = field(default=10_000, metadata={
        "help": "answers of exact queries kept (LRU); 0 turns the cache off"})
    max_top_k: int = field(default=10, metadata={"help": "the largest top_k a request may ask"})

    def __post_init__(self) -> None:
        check_ranges(self)
        if not isinstance(self.host, str) or not self.host.strip():
            fail("--host must be an address such as 127.0.0.1")
        if not 0 <= self.port <= 65535:
            fail(f"--port must be in [0, 65535], got {self.port}")

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)
