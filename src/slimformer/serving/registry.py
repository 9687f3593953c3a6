"""Variant kinds, and finding one: `load_variant("name=path@kind")`.

Each kind is declared once (serving/kinds.py) with its class, which has `detect(folder)` and
`load(folder, name, threads)` and is imported only when asked for (so a kind that needs torch
costs nothing until then)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from slimformer.errors import fail
from slimformer.models.aliases import resolve_path
from slimformer.serving.kinds import DECLARED, kind_named
from slimformer.serving.variant import Variant

# Kind name -> "module:Class", from the kinds' declarations (serving/kinds.py).
KINDS: dict[str, str] = {kind.name: kind.runner for kind in DECLARED}
UNDETECTED_KINDS = {kind.name for kind in DECLARED if not kind.detected}


def variant_class(kind: str) -> type[Variant]:
    module, cls = kind_named(kind).runner.split(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except ModuleNotFoundError as err:
        fail(f"variant kind {kind!r} is not available here: {err}")


def detect_kind(folder: Path) -> str:
    if not folder.exists():
        fail(f"model folder not found: {folder}")
    if not folder.is_dir():
        fail(f"not a model folder: {folder}")
    for kind in KINDS:
        if kind in UNDETECTED_KINDS:
            continue
        try:
            cls = variant_class(kind)
        except Exception:
            continue
        if cls.detect(folder):
            return kind
    fail(f"no model in {folder}: expected config.json with weights, or an .onnx file")


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """`name=path@kind` -> (name, path, kind); name defaults to the folder's name."""
    match = re.fullmatch(r"(?:(?P<name>[^=@]+)=)?(?P<path>[^@]+)(?:@(?P<kind>[\w-]+))?", spec)
    if not match:
        fail(f"bad variant spec {spec!r}; expected NAME=PATH or NAME=PATH@KIND")
    path = match["path"]
    name = match["name"] or Path(path).name
    return name, path, match["kind"]


def load_variant(spec: str | Path, threads: int = 1, name: str | None = None,
                 kind: str | None = None) -> Variant:
    """Load a variant from `name=path@kind` (name and kind optional), or from a folder's Path
    (an existing folder whose name holds '@' or '=' is that folder, not a spec)."""
    from slimformer.checks import check_count

    check_count("threads", threads)
    if not isinstance(spec, str | Path) or (isinstance(spec, str) and not spec.strip()):
        fail(f"load_variant() needs a folder or 'NAME=FOLDER[@KIND]', got {spec!r:.60}")
    if isinstance(spec, Path) or Path(spec).is_dir():
        folder = resolve_path(str(spec))
        if not folder.is_dir():
            fail(f"model folder not found: {folder}")
        return variant_class(kind or detect_kind(folder)).load(folder, name or folder.name,
                                                               threads)
    spec_name, raw_path, spec_kind = parse_spec(spec)
    folder = resolve_path(raw_path)
    kind = kind or spec_kind or detect_kind(folder)
    if not folder.is_dir():
        fail(f"model folder not found: {folder}")
    return variant_class(kind).load(folder, name or spec_name, threads)
