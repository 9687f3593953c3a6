"""The whole chain in one command: the fastest variant within an accuracy budget.

    slimformer optimize --data_file ../shared/data/clinc150            # quick profile, offline
    slimformer optimize --config recipes/optimize_minilm_full_offline.yaml

Fine-tunes the teacher (unless --teacher names one), distils the students, makes the
compressed variants, benchmarks them all side by side (each in its own process), chooses the
fastest whose validation accuracy is within --max_accuracy_drop points of the teacher's (at
--budget_confidence, 0.8 by default, one-sided, on the paired per-row difference), and writes
report.md/.json/.png, best.json and every variant's model card to --output_dir.
Rerunning the same command skips finished steps; changing a setting redoes what depends on it.
"""

from __future__ import annotations

from slimformer.data.args import DataArguments
from slimformer.evaluation.settings import BenchmarkSettings
from slimformer.optimize.args import OptimizeArguments

ARGUMENTS = (OptimizeArguments, DataArguments, BenchmarkSettings)


def main(argv: list[str] | None = None) -> None:
    from pathlib import Path

    from slimformer.cli.config import parse_args
    from slimformer.optimize.run import optimize

    args, data_args, settings = parse_args(ARGUMENTS, argv, description=__doc__)
    choice = optimize(args, data_args, settings)
    print((Path(args.output_dir) / "report.md").read_text())
    print(f"chosen: {choice['name']} ({choice['path']})")
