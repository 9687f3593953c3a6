"""Running the service with uvicorn: one process, or `workers` processes on one port.

With several workers uvicorn starts each from an import string, so the app is built by
`app_from_environment` from the settings this process leaves in the environment. SIGTERM
stops accepting, lets the requests in flight finish, and exits 0 (uvicorn's graceful
shutdown).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from slimformer.errors import fail
from slimformer.files import read_json
from slimformer.serving.serve_settings import ServeSettings

ENVIRONMENT = "SLIMFORMER_SERVE"
GRACE_S = 30  # how long a shutdown waits for requests in flight


def chosen_variant(run: Path) -> tuple[Path, dict[str, Any]]:
    """The folder of the variant an optimize run chose (best.json), with its benchmark row."""
    best_file = run / "best.json"
    if not best_file.is_file():
        fail(f"{run} has no best.json: give the folder of a finished `slimformer optimize` run")
    best = read_json(best_file)
    if not isinstance(best, dict) or not isinstance(best.get("name"), str):
        fail(f"{best_file} names no chosen variant")
    raw = Path(str(best.get("path") or "").split("@")[0])
    folder = raw if raw.is_dir() else next(
        (p for p in sorted(run.rglob(raw.name)) if p.is_dir()), None) if raw.name else None
    if folder is None:
        fail(f"the chosen variant {best['name']!r} ({raw}) is not in {run}")
    report = run / "benchmark" / "report.json"
    rows = read_json(report).get("variants", []) if report.is_file() else []
    row = next((r for r in rows if r.get("name") == best["name"]), {})
    summary = {"name": best["name"], "reason": best.get("reason"),
               "p50_ms": row.get("latency_ms", {}).get("p50"), "size_mb": row.get("size_mb"),
               "test_accuracy": best.get("test_accuracy"),
               "teacher_test_accuracy": best.get("teacher_test_accuracy"),
               "speedup": best.get("speedup")}
    return folder, summary


def graceful_server_class():
    import uvicorn

    class GracefulServer(uvicorn.Server):
        """uvicorn, minus one step: after its graceful shutdown it raises the signal again, so
        the process would end killed by SIGTERM (status -15). A finished drain exits 0."""

        @contextlib.contextmanager
        def capture_signals(self):
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return GracefulServer


def app_from_environment():
    """The app of a worker process (uvicorn --factory), from what `serve` left for it."""
    from slimformer.serving.http import create_app

    spec = json.loads(os.environ[ENVIRONMENT])
    return create_app(spec["folder"], ServeSettings(**spec["settings"]), spec.get("summary"))


def serve(folder: str | Path, settings: ServeSettings,
          summary: dict[str, Any] | None = None) -> None:
    """Serve a variant folder until SIGTERM or Ctrl-C."""
    import uvicorn

    from slimformer.serving.http import create_app

    GracefulServer = graceful_server_class()  # noqa: N806 (a class)
    folder = Path(folder)
    app = create_app(folder, settings, summary)  # checks the folder before anything starts
    options = {"host": settings.host, "port": settings.port, "log_level": "warning",
               "access_log": False, "timeout_graceful_shutdown": GRACE_S}
    if settings.workers == 1:
        GracefulServer(uvicorn.Config(app, **options)).run()
        return
    os.environ[ENVIRONMENT] = json.dumps({"folder": str(folder.resolve()),
                                          "settings": settings.to_dict(), "summary": summary})
    uvicorn.run("slimformer.serving.server:app_from_environment", factory=True,
                workers=settings.workers, **options)
