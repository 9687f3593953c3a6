"""How a variant was made: `slimformer.json` in each variant folder, a chain of steps.

Every step that writes a variant folder (fine-tune, distill, quantize, ONNX export/optimize,
prune) copies its source's chain and appends itself, so a model card can tell the whole story.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FILENAME = "slimformer.json"


def read_provenance(folder: str | Path) -> dict[str, Any]:
    """The folder's record, or an empty chain for a model slimformer did not make."""
    path = Path(folder) / FILENAME
    if not path.is_file():
        return {"base_model": None, "steps": []}
    return json.loads(path.read_text())


def write_provenance(folder: str | Path, step: str, settings: dict[str, Any],
                     source: str | Path | None = None, base_model: str | None = None,
                     **extra: Any) -> dict[str, Any]:
    """Record `step` (with its key settings) on top of the source folder's chain."""
    record = read_provenance(source) if source is not None else {"base_model": None, "steps": []}
    if base_model is not None:
        record["base_model"] = base_model
    elif record.get("base_model") is None and source is not None:
        record["base_model"] = str(source)
    record["steps"] = [*record["steps"], {"step": step, "settings": settings}]
    record.update(extra)
    Path(folder, FILENAME).write_text(json.dumps(record, indent=2, default=str))
    return record
