"""Which repositories a push makes: one per benchmarked variant, `<namespace>/<name>-<variant>`
with the variant's folder, checked (names, folders, no two variants on one repository) before
anything is staged or sent."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from slimformer.errors import fail
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.serving.registry import parse_spec

REPO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,94}[A-Za-z0-9_]?")


RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK")


@dataclass
class RepoPlan:
    """One repository to publish: a benchmarked variant and where it goes."""

    variant: str
    kind: str
    folder: Path
    repo_id: str


def is_main_process() -> bool:
    """False in the non-zero ranks of a distributed launch (torchrun, accelerate, SLURM, MPI)."""
    for name in RANK_VARIABLES:
        value = os.environ.get(name)
        if value not in (None, "") and value.strip() != "0":
            return False
    return True


def check_names(namespace: str, name: str) -> None:
    """The Hub namespace and the model name, checked before any file is read."""
    if not namespace or not re.fullmatch(r"[A-Za-z0-9][\w.-]*", namespace):
        fail(f"bad Hub namespace {namespace!r}: use your user name or an organization's")
    if not name:
        fail("no model name given: pass --name (repositories are <namespace>/<name>-<variant>)")


def repo_id_for(namespace: str, name: str, variant: str) -> str:
    repo_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{name}-{variant}").strip("-.")
    check_names(namespace, name)
    if not REPO_NAME.fullmatch(repo_name) or "--" in repo_name or ".." in repo_name:
        fail(f"cannot make a valid Hub repository name from {name!r} and variant {variant!r} "
             f"({repo_name!r}: letters, digits, '-', '_', '.', at most 96 characters, "
             "no '--' or '..')")
    return f"{namespace}/{repo_name}"


def resolve_folder(raw: str, report_path: Path | None) -> Path:
    """A report row's folder: as written, else relative to the report's own folder."""
    from slimformer.models.aliases import resolve_path

    folder = resolve_path(raw)
    if not folder.is_dir() and report_path is not None and not folder.is_absolute():
        beside = report_path.parent / raw
        if beside.is_dir():
            return beside
    return folder


def plan_push(report: BenchmarkReport, namespace: str, name: str,
              variants: list[str] | None = None,
              report_path: str | Path | None = None) -> list[RepoPlan]:
    """One repository per benchmarked variant; `variants` (NAME or NAME=FOLDER) picks some
    of them and may point them at another folder than the report's."""
    check_names(namespace, name)
    rows = {row["name"]: row for row in report.variants}
    report_path = Path(report_path) if report_path is not None else None
    chosen: dict[str, str | None] = {}
    for spec in variants or []:
        if "=" in spec:
            variant, folder, _ = parse_spec(spec)
        else:
            variant, folder = spec, None
        chosen[report.row(variant)["name"]] = folder  # a name not in the report: one line
    plans = []
    for variant, row in rows.items():
        if variants and variant not in chosen:
            continue
        raw = chosen.get(variant) or row.get("path")
        if not raw:
            fail(f"variant {variant!r} has no folder in the report; pass {variant}=FOLDER")
        folder = resolve_folder(str(raw), report_path)
        if not folder.is_dir():
            fail(f"folder of variant {variant!r} not found: {folder}")
        plans.append(RepoPlan(variant, row.get("kind", "pytorch"), folder,
                              repo_id_for(namespace, name, variant)))
    if not plans:
        fail("nothing to push: the report has no variants")
    repo_ids = [p.repo_id for p in plans]
    if len(set(repo_ids)) != len(repo_ids):
        fail(f"two variants map to the same repository: {', '.join(repo_ids)}")
    return plans


def folder_map(plans: list[RepoPlan]) -> dict[str, str]:
    """Local folders (as given and resolved) -> repository ids, to replace paths in the cards."""
    mapping = {}
    for plan in plans:
        mapping[str(plan.folder)] = plan.repo_id
        mapping[str(plan.folder.resolve())] = plan.repo_id
    return mapping
