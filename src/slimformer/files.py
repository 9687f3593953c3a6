"""Writing output folders whole, and never over a folder this step did not write.

A step writes into a temporary folder beside its target and renames it into place at the end,
so a failure leaves no half-written model folder. A target that already holds files is
replaced only when it is an earlier output of the same step (its `slimformer.json`, or the
`.slimformer-output.json` marker of folders that have none, names that step), or when the
user passed the overwrite flag; anything else is refused before any work starts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from slimformer.errors import fail

MARKER = ".slimformer-output.json"  # for outputs without slimformer.json (e.g. a push dry run)
PROVENANCE = "slimformer.json"


def read_json(path: Path) -> Any:
    """A JSON file's content; malformed JSON is a one-line error naming the file and line."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        fail(f"{path} is not valid JSON: {err.msg} at line {err.lineno}")
    except UnicodeDecodeError:
        fail(f"{path} is not a UTF-8 text file")


def output_step(folder: Path) -> str | None:
    """The step that wrote `folder` (the last step of its slimformer.json, or its marker)."""
    for name in (PROVENANCE, MARKER):
        path = folder / name
        if not path.is_file():
            continue
        try:
            content = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None
        if name == MARKER:
            return content.get("step")
        steps = content.get("steps") or []
        return steps[-1].get("step") if steps else None
    return None


def check_target(target: str | Path, step: str | None, overwrite: bool = False,
                 flag: str = "--overwrite true") -> None:
    """Refuse a target that is a file, or a non-empty folder this step did not write."""
    target = Path(target)
    if not target.exists():
        return
    if not target.is_dir():
        fail(f"output {target} is a file, not a folder")
    if overwrite or not any(target.iterdir()):
        return
    if step is not None and output_step(target) == step:
        return
    owner = output_step(target)
    what = f"the output of step {owner!r}" if owner else "files slimformer did not write"
    fail(f"output folder {target} already holds {what}; choose another folder, or pass "
         f"{flag} to replace it")


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staged_folder(target: str | Path, overwrite: bool = False, step: str | None = None,
                  flag: str = "--overwrite true") -> Iterator[Path]:
    """A temporary folder beside `target`, renamed to it only when the block succeeds.

    An existing `target` is replaced only if `check_target` allows it (checked again at the
    end: another process may have written there meanwhile).
    """
    target = Path(target)
    check_target(target, step, overwrite, flag)
    stage = make_stage(target)
    try:
        yield stage
        check_target(target, step, overwrite, flag)
        replace_folder(stage, target)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def make_stage(target: Path) -> Path:
    """An empty hidden folder beside `target` (same file system: the final rename is atomic)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    stage.chmod(0o777 & ~umask())  # mkdtemp makes it private (0700); outputs are shared files
    return stage


def replace_folder(stage: Path, target: Path) -> None:
    """Move `stage` to `target`; an old `target` (already checked) is moved aside first and
    deleted only once the new one is in place."""
    if not target.exists():
        stage.rename(target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
    old.rmdir()
    target.rename(old)
    stage.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def write_marker(folder: Path, step: str) -> None:
    (folder / MARKER).write_text(json.dumps({"step": step}) + "\n")
