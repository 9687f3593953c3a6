"""Benchmark classifier variants side by side on the CLINC150 test split.

    python recipes/benchmark.py --config recipes/benchmark_minilm_offline.yaml
    python recipes/benchmark.py --data_file ../shared/data/clinc150 \
        --variants fp32=outputs/minilm-clinc int8=outputs/minilm-clinc-onnx-int8

A variant is NAME=FOLDER or NAME=FOLDER@KIND (kinds: pytorch, pytorch-int8, onnx, onnx-lean).
Writes report.json, report.md and report.png to --output_dir.
"""

from dataclasses import dataclass, field

from slimformer.args import DataArguments
from slimformer.benchmark import BenchmarkSettings, benchmark_variants, check_query_counts
from slimformer.config import parse_args
from slimformer.data import load_clinc
from slimformer.errors import fail, run_recipe
from slimformer.report import write_report
from slimformer.variants import load_variant, parse_spec


@dataclass
class ReportArguments:
    variants: list[str] = field(default_factory=list,
                                metadata={"help": "NAME=FOLDER[@KIND] for each variant"})
    baseline: str | None = field(default=None,
                                 metadata={"help": "variant the ratios refer to (first)"})
    output_dir: str = field(default="outputs/benchmark")


ARGUMENTS = (ReportArguments, DataArguments, BenchmarkSettings)


def main(argv: list[str] | None = None) -> None:
    report_args, data_args, settings = parse_args(ARGUMENTS, argv, description=__doc__)
    if not report_args.variants:
        fail("no variants given: pass --variants NAME=FOLDER [NAME=FOLDER ...]")
    names = [parse_spec(spec)[0] for spec in report_args.variants]
    if len(set(names)) != len(names):
        fail(f"variant names must be unique: {', '.join(names)}")
    if report_args.baseline is not None and report_args.baseline not in names:
        fail(f"baseline {report_args.baseline!r} is not a benchmarked variant: "
             f"{', '.join(names)}")
    test = load_clinc(data_args.data_file, data_args.dataset_config,
                      max_samples=data_args.max_samples)["test"]
    check_query_counts(test, settings)
    variants = [load_variant(spec, threads=settings.threads) for spec in report_args.variants]
    report = benchmark_variants(variants, test, settings)
    paths = write_report(report, report_args.output_dir, report_args.baseline)
    print(paths["md"].read_text().split("\n\n")[2])
    print(f"wrote {', '.join(str(p) for p in paths.values())}")


if __name__ == "__main__":
    run_recipe(main)
