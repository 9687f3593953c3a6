"""Publishing benchmarked variants to the Hugging Face Hub, one model repository per variant.

`plan_push` (hub/push_plan.py) turns a benchmark report into a list of repositories
(`<namespace>/<name>-<variant>` with the variant's folder); `stage_repositories` writes each
repository's exact content into a local folder: the publishable model files, a provenance record
and config without local paths, the generated card (README.md) and the benchmark plot. A dry run
moves those folders to a folder of your choice; a real push checks everything it can before it
writes anything:

1. the token (from `HF_TOKEN` or `huggingface-cli login`; never printed, never written),
2. offline mode, the Hub's answer to `whoami`, and that the token may write to the namespace,
3. every card and file (rendered and staged locally first),

and then publishes each repository as a single commit (`upload_folder`), so a repository is
either complete or unchanged. A repository that this push created and then failed to fill is
deleted again. Only the main process pushes when several run (torchrun, accelerate)."""

from __future__ import annotations

import json
import shutil
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from slimformer.errors import fail
from slimformer.evaluation.report_data import BenchmarkReport
from slimformer.files import staged_folder, write_marker
from slimformer.hub.card import PLOT_FILE, render_card
from slimformer.hub.push_plan import RepoPlan, folder_map
from slimformer.hub.sanitize import check_public, public_value
from slimformer.provenance import FILENAME as PROVENANCE_FILE

# What a model repository gets from a variant folder (top level only: checkpoints, TensorBoard
# runs and optimizer states stay home). Weights only as safetensors or ONNX, never pickles.
PUBLISHED = ("*.safetensors", "*.onnx", "*.onnx_data", "*.json", "*.txt", "*.model")


NOT_PUBLISHED = ("trainer_state.json", "training_args.*", "README.md", "*.pt", "*.pth", "*.pkl",
                 "slimformer-run.json", ".slimformer-output.json")


PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model-*.bin")


# Text files whose values can hold local paths (tokenizer vocabularies are left alone).
SANITIZED = ("config.json", "tokenizer_config.json", "special_tokens_map.json",
             "generation_config.json", "preprocessor_config.json", "ort_config.json",
             "metrics.json", "slimformer-int8.json", PROVENANCE_FILE)


DRY_RUN_STEP = "push-dry-run"


def published_files(folder: Path) -> list[Path]:
    # Hidden files are slimformer's own bookkeeping (step records, output markers).
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and not p.name.startswith(".")
             and any(fnmatch(p.name, pat) for pat in PUBLISHED)
             and not any(fnmatch(p.name, pat) for pat in NOT_PUBLISHED)]
    pickled = [p.name for p in folder.iterdir() if any(fnmatch(p.name, pat)
                                                       for pat in PICKLED_WEIGHTS)]
    if pickled and not any(p.suffix in (".safetensors", ".onnx") for p in files):
        fail(f"{folder} holds weights only as pickles ({', '.join(pickled)}); slimformer "
             "publishes safetensors or ONNX: re-save with save_pretrained(safe_serialization=True)")
    return files


def sanitized_json(path: Path, folders: dict[str, str]) -> str | None:
    """The JSON file with local paths replaced by repository ids or folder names (None: as is)."""
    try:
        content = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    cleaned = public_value(content, folders)
    return None if cleaned == content else json.dumps(cleaned, indent=2) + "\n"


def stage_repository(plan: RepoPlan, plans: list[RepoPlan], report: BenchmarkReport,
                     target: Path, *, plot: Path | None, secrets: tuple[str, ...] = (),
                     **card_options: Any) -> list[str]:
    """Write one repository's files into `target` (created); returns their names."""
    folders = folder_map(plans)
    target.mkdir(parents=True)
    for path in published_files(plan.folder):
        cleaned = sanitized_json(path, folders) if path.name in SANITIZED else None
        if cleaned is not None:
            (target / path.name).write_text(cleaned)
        else:
            shutil.copy2(path, target / path.name)
        if path.name in SANITIZED:
            check_public((target / path.name).read_text(), f"{plan.variant}/{path.name}",
                         secrets)
    card = render_card(report, plan.variant, plan.repo_id, folder=plan.folder,
                       repo_ids={p.variant: p.repo_id for p in plans}, folders=folders,
                       plot_file=PLOT_FILE if plot is not None else None, secrets=secrets,
                       **card_options)
    card.save(target / "README.md")
    if plot is not None:
        shutil.copy2(plot, target / PLOT_FILE)
    return sorted(p.name for p in target.iterdir())


def report_plot(report_path: Path | None) -> Path | None:
    if report_path is None:
        return None
    folder = report_path if report_path.is_dir() else report_path.parent
    plot = folder / "report.png"
    return plot if plot.is_file() else None


def stage_repositories(plans: list[RepoPlan], report: BenchmarkReport, root: Path, *,
                       plot: Path | None, secrets: tuple[str, ...] = (),
                       **card_options: Any) -> dict[str, Path]:
    """Every repository's content under root/<namespace>/<repo name>; returns repo id -> folder."""
    staged = {}
    for plan in tqdm(plans, desc="cards", leave=False):
        target = root / plan.repo_id
        stage_repository(plan, plans, report, target, plot=plot, secrets=secrets,
                         **card_options)
        staged[plan.repo_id] = target
    return staged


def dry_run(plans: list[RepoPlan], report: BenchmarkReport, output_dir: str | Path, *,
            plot: Path | None, overwrite: bool = False,
            **card_options: Any) -> dict[str, Path]:
    """Write what a push would publish to output_dir/<namespace>/<repo name>, nothing remote.

    Everything is staged beside `output_dir` first and moved into place at the end, so a
    failure leaves the previous dry run (or nothing) behind, never half of a new one. A folder
    that holds anything but an earlier dry run is refused unless `overwrite`.
    """
    output_dir = Path(output_dir)
    with staged_folder(output_dir, overwrite, step=DRY_RUN_STEP) as stage:
        write_marker(stage, DRY_RUN_STEP)
        staged = stage_repositories(plans, report, stage, plot=plot, **card_options)
        (stage / "push-plan.json").write_text(json.dumps(
            [{"variant": p.variant, "kind": p.kind, "repo_id": p.repo_id,
              "files": sorted(f.name for f in staged[p.repo_id].iterdir())} for p in plans],
            indent=2))
    return {repo_id: output_dir / repo_id for repo_id in staged}
