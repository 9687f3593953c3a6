"""A process that holds one variant alone, as it is deployed, and times it on request.

    python -m slimformer.serving.worker FOLDER KIND THREADS

The parent (`slimformer.serving.timing`) writes one JSON request per line on stdin and reads
one JSON answer per line. Requests:

- `{"op": "time", "warmup": [[text, ...], ...], "batches": [[text, ...], ...]}`: runs the
  warm-up batches untimed, then times each batch; answers `{"seconds": [...], "cpu_s": ...}`.
- `{"op": "memory"}`: answers `{"peak_rss_mb": ...}`, the peak resident set of this process
  (imports, model and every batch it ran included).

Every answer carries `pid`, so the parent can prove each variant ran in a process of its own.
Whatever the libraries print goes to stderr: stdout carries only the protocol.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path


def peak_rss_kib() -> float:
    """This process image's peak RSS. Not ru_maxrss: Linux carries that across exec, so a
    child forked from a big parent would report the parent's size."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def time_batches(variant, request: dict) -> dict:
    for batch in request.get("warmup", []):
        variant.predict_logits(batch)
    cpu_start = time.process_time()
    seconds = []
    for batch in request["batches"]:
        start = time.perf_counter()
        variant.predict_logits(batch)
        seconds.append(time.perf_counter() - start)
    return {"seconds": seconds, "cpu_s": time.process_time() - cpu_start}


def serve(variant, requests, answer) -> None:
    for line in requests:
        if not line.strip():
            continue
        request = json.loads(line)
        if request["op"] == "time":
            result = time_batches(variant, request)
        elif request["op"] == "memory":
            result = {"peak_rss_mb": peak_rss_kib() / 1024}
        else:
            result = {"error": f"unknown request {request['op']!r}"}
        answer({**result, "pid": os.getpid()})


def main() -> None:
    folder, kind, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints (fd 1) go to stderr from here on

    def answer(message: dict) -> None:
        protocol.write(json.dumps(message) + "\n")
        protocol.flush()

    from slimformer.errors import SlimformerError
    from slimformer.serving.registry import variant_class

    start = time.perf_counter()
    try:
        variant = variant_class(kind).load(Path(folder), "worker", threads)
    except SlimformerError as err:
        answer({"error": str(err), "pid": os.getpid()})
        sys.exit(2)
    answer({"ready": True, "load_s": time.perf_counter() - start, "pid": os.getpid()})
    serve(variant, sys.stdin, answer)


if __name__ == "__main__":
    main()
