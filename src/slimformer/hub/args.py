"""The `push` step's settings (light to import: the CLI builds its parser from them)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LICENSE = "apache-2.0"  # all-MiniLM-L6-v2's licence; pass another for other bases


@dataclass
class PushArguments:
    report: str = field(default="outputs/benchmark/report.json",
                        metadata={"help": "report.json of the run (report.png beside it)"})
    namespace: str | None = field(default=None,
                                  metadata={"help": "Hub user or organization to push to"})
    name: str | None = field(default=None,
                             metadata={"help": "model name; repositories are NAME-VARIANT"})
    variants: list[str] = field(default_factory=list,
                                metadata={"help": "NAME or NAME=FOLDER: push only these"})
    dry_run: bool = field(default=False,
                          metadata={"help": "write the repositories to --dry_run_dir instead"})
    dry_run_dir: str = field(default="outputs/hub-dry-run")
    overwrite: bool = field(default=False, metadata={
        "help": "replace a --dry_run_dir that holds something other than an earlier dry run"})
    private: bool = field(default=False, metadata={"help": "create private repositories"})
    license: str = field(default=DEFAULT_LICENSE, metadata={"help": "the models' licence"})
    base_model: str | None = field(default=None, metadata={
        "help": "Hub id of the base model, where the provenance has none"})
    dataset_config: str | None = field(default=None, metadata={
        "help": "clinc_oos config the report was measured on (plus)"})
