"""Publish every variant of a benchmark run to the Hugging Face Hub, each with its model card.

    slimformer push --config recipes/push_offline.yaml          # dry run, no network
    slimformer push --report outputs/benchmark-minilm/report.json \
        --namespace my-user --name minilm-clinc                         # real push

Each variant of the report becomes the model repository <namespace>/<name>-<variant>, holding
its model files, a generated card (README.md: model-index, benchmark table, usage) and the
benchmark plot. --variants NAME or NAME=FOLDER pushes only those (from another folder).
The token comes from HF_TOKEN or `huggingface-cli login`, never from a flag.
--dry_run writes each repository's exact content under --dry_run_dir instead of pushing.
"""

from __future__ import annotations

from slimformer.hub.args import PushArguments

ARGUMENTS = (PushArguments,)


def main(argv: list[str] | None = None) -> None:
    from pathlib import Path

    from slimformer.cli.config import parse_args
    from slimformer.errors import fail
    from slimformer.evaluation.report_data import load_report
    from slimformer.files import check_target
    from slimformer.hub.push import push
    from slimformer.hub.push_plan import check_names, is_main_process, plan_push
    from slimformer.hub.staging import DRY_RUN_STEP, dry_run, report_plot

    (args,) = parse_args(ARGUMENTS, argv, description=__doc__)
    if not is_main_process():
        return
    if not args.namespace:
        fail("no namespace given: pass --namespace (your Hub user name or an organization)")
    check_names(args.namespace, args.name)  # arguments first, then the files they name
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
