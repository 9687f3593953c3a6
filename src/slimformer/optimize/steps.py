"""Steps of a run that resume: each records what it was made from, and is redone only when
that changes.

A step owns one folder inside the run folder. When it finishes, `.slimformer-step.json` in it
records the step's fingerprint: a hash of its settings and of the fingerprints of the steps it
depends on. A rerun skips a step whose record matches, and redoes it and everything that
depends on it otherwise (a step redone with the same settings keeps its fingerprint, so its
dependants are redone because it is, not because their fingerprints changed). A step killed
half-way left no record, so its folder, which this run made, is cleared and the step runs
again: nothing half-written survives.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

RECORD = ".slimformer-step.json"


@dataclass
class Step:
    name: str
    folder: Path
    settings: dict[str, Any]
    run: Callable[[Path], None]
    depends: list[str] = field(default_factory=list)
    estimate_min: float = 1.0  # shown in the plan; a rough guide on 2 CPU cores


def read_record(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / RECORD).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def fingerprint(step: Step, done: dict[str, str]) -> str:
    content = {"settings": step.settings, "depends": {d: done[d] for d in step.depends}}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def in_order(steps: list[Step]) -> list[Step]:
    """The steps so that each comes after every step it depends on (the given order kept
    where the graph allows); an unknown dependency or a cycle is an error naming it."""
    from slimformer.errors import fail

    names = [step.name for step in steps]
    if len(set(names)) != len(names):
        fail(f"two steps share a name: {sorted(n for n in set(names) if names.count(n) > 1)}")
    for step in steps:
        unknown = [d for d in step.depends if d not in names]
        if unknown:
            fail(f"step {step.name!r} depends on unknown step(s) {', '.join(unknown)}")
    ordered: list[Step] = []
    placed: set[str] = set()
    while len(ordered) < len(steps):
        ready = [s for s in steps if s.name not in placed and set(s.depends) <= placed]
        if not ready:
            fail("the steps depend on each other in a cycle: "
                 f"{', '.join(s.name for s in steps if s.name not in placed)}")
        ordered.append(ready[0])
        placed.add(ready[0].name)
    return ordered


def plan_status(steps: list[Step]) -> list[tuple[Step, str, str]]:
    """Each step (in dependency order) with its fingerprint and whether it is done or to do.
    A step is to do when its record does not match, or when a step it depends on is to do:
    a step redone with unchanged settings (its folder gone, or killed half-way) keeps its
    fingerprint, but what depends on it read the old folder."""
    prints: dict[str, str] = {}
    to_do: set[str] = set()
    status = []
    for step in in_order(steps):
        prints[step.name] = fingerprint(step, prints)
        record = read_record(step.folder)
        done = record is not None and record.get("fingerprint") == prints[step.name] \
            and not to_do & set(step.depends)
        if not done:
            to_do.add(step.name)
        status.append((step, prints[step.name], "done" if done else "to do"))
    return status


def show_plan(status: list[tuple[Step, str, str]]) -> None:
    left = sum(step.estimate_min for step, _, state in status if state != "done")
    for step, _, state in status:
        logger.info("  %-28s %-6s (~%.0f min)", step.name, state, step.estimate_min)
    logger.info("to do: about %.0f minutes on 2 CPU cores", left)


def run_steps(steps: list[Step]) -> dict[str, dict[str, Any]]:
    """Run what is not done yet, each step after those it depends on; returns each step's
    record."""
    status = plan_status(steps)
    show_plan(status)
    records = {}
    for step, print_, state in status:
        if state == "done":
            records[step.name] = read_record(step.folder)
            continue
        if step.folder.exists():  # a killed run's half, or an outdated result: ours to clear
            shutil.rmtree(step.folder)
        logger.info("running %s ...", step.name)
        started = time.time()
        step.run(step.folder)
        record = {"step": step.name, "fingerprint": print_, "settings": step.settings,
                  "started": started, "finished": time.time()}
        step.folder.mkdir(parents=True, exist_ok=True)
        (step.folder / RECORD).write_text(json.dumps(record, indent=2, default=str))
        logger.info("%s done in %.1f min", step.name, (record["finished"] - started) / 60)
        records[step.name] = record
    return records
