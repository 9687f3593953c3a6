"""Benchmark classifier variants side by side on the test split (CLINC150 unless --dataset).

    slimformer benchmark --config recipes/benchmark_minilm_offline.yaml
    slimformer benchmark --data_file ../shared/data/clinc150 \
        --variants fp32=outputs/minilm-clinc int8=outputs/minilm-clinc-onnx-int8

A variant is NAME=FOLDER or NAME=FOLDER@KIND (kinds: pytorch, pytorch-int8, onnx, onnx-lean).
Each variant is timed alone in a process of its own, the processes taking turns in rounds.
Writes report.json, report.md and report.png to --output_dir.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slimformer.data.args import DataArguments
from slimformer.evaluation.settings import BenchmarkSettings


@dataclass
class ReportArguments:
    variants: list[str] = field(default_factory=list,
                                metadata={"help": "NAME=FOLDER[@KIND] for each variant"})
    baseline: str | None = field(default=None,
                                 metadata={"help": "variant the ratios refer to (first)"})
    output_dir: str = field(default="outputs/benchmark")
    overwrite: bool = field(default=False, metadata={
        "help": "replace an --output_dir that holds files an earlier benchmark did not write"})
    with_validation: bool = field(default=True, metadata={
        "help": "also score the validation split (where a variant with no stored out-of-scope "
                "fallback gets one fitted)"})


ARGUMENTS = (ReportArguments, DataArguments, BenchmarkSettings)


def main(argv: list[str] | None = None) -> None:
    from slimformer.cli.config import parse_args
    from slimformer.errors import fail
    from slimformer.serving.registry import parse_spec

    report_args, data_args, settings = parse_args(ARGUMENTS, argv, description=__doc__)
    if not report_args.variants:
        fail("no variants given: pass --variants NAME=FOLDER [NAME=FOLDER ...]")
    names = [parse_spec(spec)[0] for spec in report_args.variants]
    if len(set(names)) != len(names):
        fail(f"variant names must be unique: {', '.join(names)}")
    if report_args.baseline is not None and report_args.baseline not in names:
        fail(f"baseline {report_args.baseline!r} is not a benchmarked variant: "
             f"{', '.join(names)}")
    from slimformer.evaluation.benchmark import benchmark_folders

    paths = benchmark_folders(report_args.variants, data_args, settings,
                              report_args.output_dir, report_args.baseline,
                              with_validation=report_args.with_validation,
                              overwrite=report_args.overwrite)
    print(paths["md"].read_text().split("\n\n")[2])
    print(f"wrote {', '.join(str(p) for p in paths.values())}")
