"""Worker processes that each hold one variant, for timing it untouched by the others."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from slimformer.errors import fail

logger = logging.getLogger(__name__)


class VariantProcess:
    """A worker process holding one variant; `request` sends one JSON line, reads one back."""

    def __init__(self, name: str, folder: Path, kind: str, threads: int):
        self.name = name
        self.log = tempfile.TemporaryFile(mode="w+")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads),
               "TOKENIZERS_PARALLELISM": "false"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "slimformer.serving.worker", str(folder), kind, str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True, env=env)
        self.pid = self.process.pid

    def wait_ready(self) -> None:
        """Blocks until the worker has loaded its variant (or fails naming why it died)."""
        self.pid = self.read()["pid"]

    def read(self) -> dict[str, Any]:
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            fail(f"the process timing variant {self.name!r} died: {self.last_error()}")
        message = json.loads(line)
        if "error" in message:
            fail(f"variant {self.name!r}: {message['error']}")
        return message

    def last_error(self) -> str:
        self.log.seek(0)
        lines = [line for line in self.log.read().splitlines() if line.strip()]
        return lines[-1][:300] if lines else f"exit code {self.process.returncode}"

    def request(self, **message: Any) -> dict[str, Any]:
        try:
            self.process.stdin.write(json.dumps(message) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            self.process.wait()
            fail(f"the process timing variant {self.name!r} died: {self.last_error()}")
        return self.read()

    def stop(self) -> None:
        """Asks the worker to exit (end of its input) without waiting for it."""
        if self.process.poll() is None and not self.process.stdin.closed:
            try:
                self.process.stdin.close()
            except BrokenPipeError:
                pass

    def close(self) -> None:
        self.stop()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def start_workers(folders: dict[str, tuple[Path, str]], threads: int) -> list[VariantProcess]:
    """One process per variant, all loading at once (loading is not timed; the rounds start
    once every worker is ready)."""
    workers: list[VariantProcess] = []
    try:
        for name, (folder, kind) in folders.items():
            workers.append(VariantProcess(name, folder, kind, threads))
        logger.info("loading %d variants, each in its own process", len(workers))
        for worker in workers:
            worker.wait_ready()
    except BaseException:
        close_all(workers)
        raise
    return workers


def close_all(workers: list[VariantProcess]) -> None:
    """Stops every worker first, then waits: they tear down side by side."""
    for worker in workers:
        worker.stop()
    for worker in workers:
        worker.close()
