"""The HTTP service of one variant folder, as an ASGI app (Starlette) any ASGI host can run.

    from slimformer.serving.http import create_app
    app = create_app("outputs/optimize-full/variants/student-3l-1-3-5/...-onnx-O2-int8")
    # uvicorn, gunicorn -k uvicorn.workers.UvicornWorker, a Ray Serve ingress, ...

Routes (text-embeddings-inference's shape): `POST /predict` ({"inputs": text | [texts],
"top_k": k} -> [{"label", "score", "fallback"}]), `GET /health` (200 once the model is loaded,
503 while loading or shutting down; a /predict that arrives while the model loads waits
for it, up to a minute), `GET /info`, `GET /metrics` (Prometheus) and `GET /`, a
page to try queries. Errors are JSON {"error", "error_type"}: 413 (too many or too long texts,
too large a body), 422 (not JSON, not UTF-8, wrong types, unknown fields), 429 (queue full),
503 (not ready). An ONNX folder runs on the lean predictor: the service never imports torch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from slimformer.errors import fail
from slimformer.serving.batching import AnswerCache, Batcher, Overloaded
from slimformer.serving.http_input import BadRequest, parse_predict
from slimformer.serving.http_metrics import ServiceMetrics
from slimformer.serving.page import render_page
from slimformer.serving.serve_settings import ServeSettings
from slimformer.serving.variant import OOS_LABEL, Variant

logger = logging.getLogger(__name__)
DRAIN_FACTOR = 16  # an over-long body is read and dropped up to this many times the limit
LOAD_WAIT_S = 60.0  # a request that arrives while the model loads waits this long for it


def load_served_variant(folder: Path, threads: int) -> Variant:
    """An ONNX folder on the lean predictor, any other variant folder by its detected kind."""
    if any(folder.glob("*.onnx")):
        from slimformer.serving.lean import LeanOnnxVariant

        return LeanOnnxVariant.load(folder, folder.name, threads)
    from slimformer.serving.registry import load_variant

    return load_variant(f"{folder.name}={folder}", threads=threads)


def error(status: int, error_type: str, message: str) -> JSONResponse:
    return JSONResponse({"error": message, "error_type": error_type}, status_code=status)


class Service:
    """The model, its batcher and cache, and the state /health reports."""

    def __init__(self, folder: Path, settings: ServeSettings, summary: dict[str, Any] | None):
        self.folder, self.settings, self.summary = folder, settings, summary
        self.metrics = ServiceMetrics()
        self.cache = AnswerCache(settings.cache_size)
        self.variant: Variant | None = None
        self.batcher: Batcher | None = None
        self.state = "loading"  # -> ready -> draining; or failed
        self.settled: asyncio.Event | None = None  # set once loaded (or failed)

    async def start(self) -> None:
        self.settled = asyncio.Event()
        loop = asyncio.get_running_loop()
        self.loading = loop.run_in_executor(None, load_served_variant, self.folder,
                                            self.settings.threads)
        self.loading.add_done_callback(lambda done: loop.create_task(self.loaded(done)))

    async def loaded(self, done: asyncio.Future) -> None:
        if done.exception() is not None:
            self.state = "failed"
            logger.error("could not load %s: %s", self.folder, done.exception())
            self.settled.set()
            return
        self.variant = done.result()
        self.batcher = Batcher(self.run, self.settings.max_batch_size,
                               self.settings.max_wait_ms, self.settings.max_queue,
                               on_batch=self.metrics.batch_size.observe)
        self.batcher.start()
        self.state = "ready"
        self.settled.set()
        logger.info("serving %s (%s) on %d thread(s)", self.folder.name, self.variant.kind,
                    self.settings.threads)

    async def stop(self) -> None:
        self.state = "draining"
        if self.batcher is not None:
            await self.batcher.stop()

    def run(self, texts: list[str]) -> list[dict[str, Any]]:
        """One model batch (on the batcher's thread), with the top labels every request may
        ask for, so a cached answer serves any top_k."""
        return self.variant.predict(texts, return_scores=True, top_k=self.settings.max_top_k)

    async def answer(self, texts: list[str], top_k: int) -> tuple[list[dict[str, Any]],
                                                                  float, int]:
        """Answers in order, the seconds spent in the model batch, and the cache hits."""
        answers: list[dict[str, Any] | None] = [self.cache.get(t) for t in texts]
        missing = [i for i, a in enumerate(answers) if a is None]
        hits = len(texts) - len(missing)
        self.metrics.cache_hits.inc(hits)
        model_s = 0.0
        if missing:
            self.metrics.cache_misses.inc(len(missing))
            self.metrics.queue_depth.set(self.batcher.depth + len(missing))
            start = time.perf_counter()
            found = await self.batcher.predict([texts[i] for i in missing])
            model_s = time.perf_counter() - start
            for i, answer in zip(missing, found):
                answers[i] = answer
                self.cache.put(texts[i], answer)
            self.metrics.queue_depth.set(self.batcher.depth)
        shown = []
        for answer in answers:
            item = {"label": answer["label"], "score": answer["score"],
                    "fallback": answer["fallback"]}
            if top_k:
                item["top_k"] = answer["top_k"][:top_k]
            shown.append(item)
        self.metrics.fallbacks.inc(sum(1 for a in shown if a["fallback"]))
        return shown, model_s, hits

    def info(self) -> dict[str, Any]:
        from slimformer import __version__
        from slimformer.files import read_json

        variant = self.variant
        rule = variant.fallback if variant is not None else None
        metrics_file = self.folder / "metrics.json"
        return {"model": self.folder.name, "kind": variant.kind if variant else None,
                "state": self.state, "labels": variant.labels if variant else None,
                "fallback": rule.summary() | {"rule": rule.describe()} if rule else None,
                "slimformer_version": __version__, "settings": self.settings.to_dict(),
                "benchmark": self.summary,
                "metrics": read_json(metrics_file) if metrics_file.is_file() else None}


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or 413 past `limit` bytes. An over-long body is still read (and dropped) up to
    DRAIN_FACTOR times the limit, so that the client, still sending, gets the 413 instead of a
    connection reset; past that the connection is dropped."""
    declared = request.headers.get("content-length")
    too_long = f"the body has {declared} bytes; the most is {limit}" if (
        declared and declared.isdigit() and int(declared) > limit) else None
    body, seen = bytearray(), 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            too_long = too_long or f"the body is over {limit} bytes"
            if seen > DRAIN_FACTOR * limit:
                break
            continue
        body += chunk
    if too_long:
        raise BadRequest(413, "payload_too_large", too_long)
    return bytes(body)


def create_app(folder: str | Path, settings: ServeSettings | None = None,
               summary: dict[str, Any] | None = None) -> Starlette:
    """The service of a variant folder; the model loads in the background once the app
    starts (its lifespan), so /health answers 503 until it is ready."""
    folder = Path(folder)
    if not folder.is_dir():
        fail(f"model folder not found: {folder}")
    settings = settings or ServeSettings()
    service = Service(folder, settings, summary)
    metrics = service.metrics

    async def predict(request: Request) -> Response:
        started = time.perf_counter()
        if service.state == "loading":  # (several workers share a port: one may still load)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(service.settled.wait(), LOAD_WAIT_S)
        if service.state != "ready":
            return error(503, "unavailable", f"the model is {service.state}")
        try:
            parsed = parse_predict(await read_body(request, settings.max_body_bytes), settings)
            answers, model_s, hits = await service.answer(parsed.texts, parsed.top_k)
        except BadRequest as err:
            return error(err.status, err.error_type, err.message)
        except Overloaded as err:
            return error(429, "overloaded", f"the model is overloaded: {err}")
        total_ms = 1000 * (time.perf_counter() - started)
        return JSONResponse(answers, headers={
            "x-total-time": f"{total_ms:.3f}", "x-inference-time": f"{1000 * model_s:.3f}",
            "x-cache-hits": str(hits)})

    async def health(request: Request) -> Response:
        if service.state == "ready":
            return JSONResponse({"status": "ok"})
        return error(503, "unavailable", f"the model is {service.state}")

    async def info(request: Request) -> Response:
        return Response(json.dumps(service.info(), default=str),
                        media_type="application/json")

    async def prometheus(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def page(request: Request) -> Response:
        variant = service.variant
        return HTMLResponse(render_page(folder.name, variant.kind if variant else "loading",
                                        len(variant.labels or []) if variant else 0,
                                        OOS_LABEL, settings.max_text_chars))

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error(exc.status_code, "not_found" if exc.status_code == 404 else "http",
                     str(exc.detail))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await service.start()
        yield
        await service.stop()

    app = Starlette(routes=[Route("/predict", predict, methods=["POST"]),
                            Route("/health", health), Route("/info", info),
                            Route("/metrics", prometheus), Route("/", page)],
                    exception_handlers={HTTPException: http_error}, lifespan=lifespan)
    app.add_middleware(CountRequests, metrics=metrics)
    app.state.service = service
    return app


class CountRequests:
    """Counts every request by route and status, and times it (pure ASGI: no buffering)."""

    ROUTES = {"/predict", "/health", "/info", "/metrics", "/"}

    def __init__(self, app: Any, metrics: ServiceMetrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in self.ROUTES else "other"
        started, status = time.perf_counter(), [500]

        async def sending(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.requests.labels(route, str(status[0])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)
