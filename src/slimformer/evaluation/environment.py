"""The machine a benchmark ran on: CPU model and flags, library versions."""

from __future__ import annotations

import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

LIBRARIES = ("torch", "transformers", "optimum", "optimum-onnx", "onnxruntime", "onnx",
             "tokenizers", "numpy", "datasets", "evaluate")


CPU_FLAGS = ("avx", "avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8", "amx_bf16",
             "fma", "sse4_2", "asimd")


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
    return {"model": model, "cores": os.cpu_count(),
            "flags": [f for f in CPU_FLAGS if f in flags],
            "vnni": "avx512_vnni" in flags or "avx_vnni" in flags,
            "amx": any(f.startswith("amx") for f in flags)}


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def environment(threads: int, machine: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"threads": threads, "cpu": cpu_info(), "platform": platform.platform(),
            "libraries": library_versions(), "machine": machine or {},
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
