"""Publish every variant of a benchmark run to the Hugging Face Hub, each with its model card.

    python recipes/push.py --config recipes/push_offline.yaml          # dry run, no network
    python recipes/push.py --report outputs/benchmark-minilm/report.json \
        --namespace my-user --name minilm-clinc                         # real push

Each variant of the report becomes the model repository <namespace>/<name>-<variant>, holding
its model files, a generated card (README.md: model-index, benchmark table, usage) and the
benchmark plot. --variants NAME or NAME=FOLDER pushes only those (from another folder).
The token comes from HF_TOKEN or `huggingface-cli login`, never from a flag.
--dry_run writes each repository's exact content under --dry_run_dir instead of pushing.
"""

from dataclasses import dataclass, field
from pathlib import Path

from slimformer.card import DEFAULT_LICENSE
from slimformer.config import parse_args
from slimformer.errors import fail, run_recipe
from slimformer.files import check_target
from slimformer.push import (
    DRY_RUN_STEP,
    dry_run,
    is_main_process,
    load_report,
    plan_push,
    push,
    report_plot,
)


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


ARGUMENTS = (PushArguments,)


def main(argv: list[str] | None = None) -> None:
    (args,) = parse_args(ARGUMENTS, argv, description=__doc__)
    if not is_main_process():
        return
    if not args.namespace:
        fail("no namespace given: pass --namespace (your Hub user name or an organization)")
    if args.dry_run:
        check_target(args.dry_run_dir, DRY_RUN_STEP, args.overwrite)
    report = load_report(args.report)
    plans = plan_push(report, args.namespace, args.name, args.variants, args.report)
    options = {"license": args.license, "base_model": args.base_model,
               "dataset_config": args.dataset_config}
    plot = report_plot(Path(args.report))
    if args.dry_run:
        written = dry_run(plans, report, args.dry_run_dir, plot=plot,
                          overwrite=args.overwrite, **options)
        for repo_id, folder in written.items():
            print(f"{repo_id}: {folder} ({len(list(folder.iterdir()))} files)")
        print(f"dry run: nothing was pushed; wrote {len(written)} repositories "
              f"under {args.dry_run_dir}")
        return
    published = push(plans, report, plot=plot, private=args.private, **options)
    print(f"pushed {len(published)} repositories")


if __name__ == "__main__":
    run_recipe(main)
