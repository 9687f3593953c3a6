"""Every compressed variant of a classifier folder: PyTorch int8, ONNX, fused ONNX, ONNX int8.

`make_variants` writes them (fused graphs kept only where they measurably help on this
machine); `run_benchmark` measures them side by side against the source folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from slimformer import onnx as ort
from slimformer.args import DataArguments
from slimformer.benchmark import BenchmarkSettings, benchmark_variants, latency_stats
from slimformer.data import TEXT_COLUMN, load_clinc
from slimformer.errors import fail
from slimformer.quantize import quantize_torch_folder
from slimformer.report import write_report
from slimformer.variants import load_variant, resolve_path

ALL_VARIANTS = ("torch-int8", "onnx", "onnx-opt", "onnx-int8", "onnx-int8-static",
                "onnx-opt-int8")


@dataclass
class CompressArguments:
    model: str = field(default="", metadata={"help": "sequence-classification model folder"})
    output_dir: str | None = field(default=None,
                                   metadata={"help": "where variant folders go (default: "
                                             "beside the model)"})
    variants: list[str] = field(default_factory=lambda: list(ALL_VARIANTS),
                                metadata={"help": f"which to make: {', '.join(ALL_VARIANTS)}"})
    optimization_level: str = field(default="O2", metadata={"help": "ORTOptimizer level O1-O3 "
                                                            "(O4: GPU fp16)"})
    min_speedup: float = field(default=1.03, metadata={"help": "keep an optimized graph only "
                                                       "if its p50 is this much faster"})
    speedup_queries: int = field(default=200, metadata={"help": "queries timed for that check"})
    preset: str = field(default="auto", metadata={"help": "int8 preset: auto (from CPU flags), "
                                                  "avx512_vnni, avx512, avx2, arm64"})
    per_channel: bool = field(default=True, metadata={"help": "per-channel weight scales"})
    calibration_method: str = field(default="minmax",
                                    metadata={"help": "minmax, entropy or percentiles"})
    calibration_rows: int = field(default=300, metadata={"help": "training rows to calibrate"})
    calibration_max_length: int = field(default=64, metadata={"help": "fixed padded length of "
                                                              "calibration rows"})
    benchmark: bool = field(default=False, metadata={"help": "benchmark all against the model"})
    overwrite: bool = field(default=True, metadata={"help": "replace existing variant folders"})


def variant_folder(args: CompressArguments, source: Path, key: str) -> Path:
    name = key.replace("opt", args.optimization_level)
    root = Path(args.output_dir) if args.output_dir else source.parent
    return root / f"{source.name}-{name}"


def calibration_texts(data_args: DataArguments, rows: int) -> list[str]:
    train = load_clinc(data_args.data_file, data_args.dataset_config)["train"]
    return train.shuffle(seed=0).select(range(min(rows, len(train))))[TEXT_COLUMN]


def p50_speedup(fast: Path, slow: Path, texts: list[str], threads: int) -> float:
    """How many times lower the p50 latency of `fast` is than `slow` (interleaved, batch 1)."""
    from slimformer.benchmark import time_interleaved
    from slimformer.lean import LeanOnnxVariant

    variants = [LeanOnnxVariant.load(fast, "fast", threads),
                LeanOnnxVariant.load(slow, "slow", threads)]
    time_interleaved(variants, [[t] for t in texts[:20]], "warm-up")
    times = time_interleaved(variants, [[t] for t in texts], "speed-up check")
    return latency_stats(times["slow"])["p50"] / latency_stats(times["fast"])["p50"]


def keep_if_faster(fast: Path, slow: Path, texts: list[str], args: CompressArguments,
                   threads: int, made: dict[str, Path], key: str) -> None:
    speedup = p50_speedup(fast, slow, texts[:args.speedup_queries], threads)
    verdict = "kept" if speedup >= args.min_speedup else "dropped"
    print(f"{fast.name}: p50 {speedup:.2f}x faster than {slow.name} -> {verdict}")
    if verdict == "dropped":
        shutil.rmtree(fast)
        made.pop(key)


def make_variants(args: CompressArguments, data_args: DataArguments,
                  threads: int) -> dict[str, Path]:
    source = resolve_path(args.model)
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown:
        fail(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(ALL_VARIANTS)}")
    wanted = set(args.variants)
    needs_export = wanted - {"torch-int8"}
    texts = calibration_texts(data_args, max(args.calibration_rows, args.speedup_queries))
    folder = {key: variant_folder(args, source, key) for key in ALL_VARIANTS}
    made: dict[str, Path] = {}
    if "torch-int8" in wanted:
        made["torch-int8"] = quantize_torch_folder(source, folder["torch-int8"],
                                                   args.per_channel, args.overwrite)
    if needs_export:
        made["onnx"] = ort.export_onnx(source, folder["onnx"], overwrite=args.overwrite)
    if wanted & {"onnx-opt", "onnx-opt-int8"}:
        fused = ort.optimize_onnx(made["onnx"], folder["onnx-opt"], args.optimization_level,
                                  args.overwrite)
        print(f"{folder['onnx-opt'].name}: fused {fused}")
        made["onnx-opt"] = folder["onnx-opt"]
    if "onnx-int8" in wanted or "onnx-opt-int8" in wanted:
        settings = ort.quantize_dynamic(made["onnx"], folder["onnx-int8"], args.preset,
                                        args.per_channel, args.overwrite)
        print(f"{folder['onnx-int8'].name}: preset {settings['preset']}")
        made["onnx-int8"] = folder["onnx-int8"]
    if "onnx-opt-int8" in wanted:
        ort.quantize_dynamic(made["onnx-opt"], folder["onnx-opt-int8"], args.preset,
                             args.per_channel, args.overwrite)
        made["onnx-opt-int8"] = folder["onnx-opt-int8"]
    if "onnx-int8-static" in wanted:
        ort.quantize_static(made["onnx"], folder["onnx-int8-static"],
                            texts[:args.calibration_rows], args.calibration_method,
                            args.calibration_max_length, args.preset, args.per_channel,
                            overwrite=args.overwrite)
        made["onnx-int8-static"] = folder["onnx-int8-static"]
    # Fusion is kept only where it measurably helps on this machine.
    if "onnx-opt-int8" in made:
        keep_if_faster(made["onnx-opt-int8"], made["onnx-int8"], texts, args, threads, made,
                       "onnx-opt-int8")
    if "onnx-opt" in made and "onnx-opt" in wanted:
        keep_if_faster(made["onnx-opt"], made["onnx"], texts, args, threads, made, "onnx-opt")
    for key in set(made) - wanted:  # made only as a step towards another variant
        shutil.rmtree(made.pop(key))
    return made


def best_int8(made: dict[str, Path]) -> Path | None:
    for key in ("onnx-opt-int8", "onnx-int8", "onnx-int8-static"):
        if key in made:
            return made[key]
    return None


def run_benchmark(source: str, made: dict[str, Path], data_args: DataArguments,
                  settings: BenchmarkSettings, output_dir: Path) -> None:
    specs = [f"source={source}"] + [f"{key}={path}" for key, path in made.items()]
    best = best_int8(made)
    if best is not None:
        specs += [f"{best.name}-lean={best}@onnx-lean",
                  f"{best.name}-pipeline={best}@onnx-pipeline"]
    test = load_clinc(data_args.data_file, data_args.dataset_config,
                      max_samples=data_args.max_samples)["test"]
    variants = [load_variant(spec, threads=settings.threads) for spec in specs]
    report = benchmark_variants(variants, test, settings)
    paths = write_report(report, output_dir / "benchmark", "source")
    print(paths["md"].read_text().split("\n\n")[2])
