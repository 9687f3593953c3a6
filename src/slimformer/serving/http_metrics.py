"""The service's Prometheus metrics, in a registry of each app's own (tests start several)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0, 2.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("slimformer_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=r)
        self.latency = Histogram("slimformer_request_duration_seconds",
                                 "time from request to answer, by route", ["route"],
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.batch_size = Histogram("slimformer_batch_size", "texts per model call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("slimformer_queue_depth", "texts waiting for the model",
                                 registry=r)
        self.cache_hits = Counter("slimformer_cache_hits", "texts answered from the cache",
                                  registry=r)
        self.cache_misses = Counter("slimformer_cache_misses", "texts the model answered",
                                    registry=r)
        self.fallbacks = Counter("slimformer_fallback_answers",
                                 "answers the out-of-scope fallback gave", registry=r)
