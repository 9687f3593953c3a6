"""Writing output folders whole: never a half-written model folder."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slimformer.errors import fail


@contextmanager
def staged_folder(target: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """A temporary folder beside `target`, renamed to it only when the block succeeds."""
    target = Path(target)
    if target.exists() and not overwrite:
        fail(f"output folder already exists: {target} (pass --overwrite to replace it)")
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if target.exists():
        shutil.rmtree(target)
    stage.rename(target)


def read_json(path: Path) -> Any:
    """A JSON file's content; malformed JSON is a one-line error naming the file and line."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        fail(f"{path} is not valid JSON: {err.msg} at line {err.lineno}")
