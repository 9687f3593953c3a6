"""Every compressed variant of a classifier folder: PyTorch int8, ONNX, fused ONNX, ONNX int8.

`make_variants` writes them (fused graphs kept only where they measurably help on this
machine); `benchmark_specs` names them for the benchmark, against the source folder.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path

from slimformer.compression import onnx as ort
from slimformer.compression.args import ALL_VARIANTS, CompressArguments
from slimformer.compression.torch_int8 import quantize_torch_folder
from slimformer.data.args import DataArguments
from slimformer.data.clinc import TEXT_COLUMN
from slimformer.data.dataset import load_data
from slimformer.errors import fail
from slimformer.files import check_target
from slimformer.models.aliases import resolve_path
from slimformer.serving.timing import compare_folders

logger = logging.getLogger(__name__)


def variant_folder(args: CompressArguments, source: Path, key: str) -> Path:
    name = key.replace("opt", args.optimization_level)
    root = Path(args.output_dir) if args.output_dir else source.parent
    return root / f"{source.name}-{name}"


def calibration_texts(data_args: DataArguments, rows: int) -> list[str]:
    train = load_data(dataclasses.replace(data_args, max_samples=None))["train"]
    return train.shuffle(seed=0).select(range(min(rows, len(train))))[TEXT_COLUMN]


STEPS = {"torch-int8": "quantize-dynamic-torch", "onnx": "onnx-export",
         "onnx-opt": "onnx-optimize", "onnx-int8": "onnx-quantize-dynamic",
         "onnx-int8-static": "onnx-quantize-static", "onnx-opt-int8": "onnx-quantize-dynamic"}


def keep_if_faster(fast: Path, slow: Path, texts: list[str], args: CompressArguments,
                   threads: int, made: dict[str, Path], key: str) -> None:
    """Keep a fused graph only if it is measurably faster (the benchmark's per-process rounds:
    p50 ranges apart) and at least `min_speedup` times faster."""
    check = compare_folders((fast, "onnx-lean"), (slow, "onnx-lean"),
                            texts[:20 + args.speedup_queries], threads, args.speedup_rounds)
    kept = check["verdict"] == "faster" and check["speedup"] >= args.min_speedup
    busy = " (machine busy: unreliable)" if check["busy"] else ""
    logger.info("%s: p50 %.2f ms vs %.2f ms for %s, %.2fx, %s%s -> %s", fast.name,
                check["fast_p50_ms"], check["slow_p50_ms"], slow.name, check["speedup"],
                check["verdict"], busy, "kept" if kept else "dropped")
    if not kept:
        shutil.rmtree(fast)  # made by this run a moment ago
        made.pop(key)


def plan_folders(args: CompressArguments, source: Path, wanted: set[str],
                 scratch: Path) -> dict[str, Path]:
    """Where each variant goes: wanted ones under the output folder (each checked before any
    work starts), the steps towards them in this run's scratch folder."""
    folders = {}
    for key in ALL_VARIANTS:
        final = variant_folder(args, source, key)
        if key in wanted:
            check_target(final, STEPS[key], args.overwrite)
            folders[key] = final
        else:
            folders[key] = scratch / final.name
    return folders


def check_settings(args: CompressArguments, wanted: set[str]) -> None:
    """Preset, level and calibration method, checked before anything is exported."""
    if wanted - {"torch-int8", "onnx", "onnx-opt"}:
        ort.choose_preset(args.preset)
    if wanted & {"onnx-opt", "onnx-opt-int8"} and args.optimization_level not in ort.LEVELS:
        fail(f"unknown optimization level {args.optimization_level!r}; choose one of "
             f"{', '.join(ort.LEVELS)}")
    if "onnx-int8-static" in wanted and args.calibration_method not in ort.CALIBRATION_METHODS:
        fail(f"unknown calibration method {args.calibration_method!r}; choose one of "
             f"{', '.join(ort.CALIBRATION_METHODS)}")


def make_variants(args: CompressArguments, data_args: DataArguments,
                  threads: int) -> dict[str, Path]:
    source = resolve_path(args.model)
    unknown = sorted(set(args.variants) - set(ALL_VARIANTS))
    if unknown:
        fail(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(ALL_VARIANTS)}")
    if not args.variants:
        fail(f"no variants asked for; choose from {', '.join(ALL_VARIANTS)}")
    if not (source / "config.json").is_file():
        fail(f"no model in {source}: config.json is missing")
    wanted = set(args.variants)
    check_settings(args, wanted)
    root = variant_folder(args, source, "onnx").parent
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".slimformer-steps-", dir=root))
    try:
        folder = plan_folders(args, source, wanted, scratch)
        texts = calibration_texts(data_args, max(args.calibration_rows,
                                                 20 + args.speedup_queries))
        made = write_variants(args, source, wanted, folder, texts)
        # Fusion is kept only where it measurably helps on this machine.
        if "onnx-opt-int8" in made:
            keep_if_faster(made["onnx-opt-int8"], made["onnx-int8"], texts, args, threads,
                           made, "onnx-opt-int8")
        if "onnx-opt" in made and "onnx-opt" in wanted:
            keep_if_faster(made["onnx-opt"], made["onnx"], texts, args, threads, made,
                           "onnx-opt")
        fit_fallbacks({k: p for k, p in made.items() if k in wanted}, data_args, threads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # this run's intermediate steps only
    return {key: path for key, path in made.items() if key in wanted}


def fit_fallbacks(made: dict[str, Path], data_args: DataArguments, threads: int) -> None:
    """Each variant's own out-of-scope fallback, fitted on its validation logits (int8 moves
    the logits, so the source model's rule, copied with its config, is replaced)."""
    from slimformer.serving.fit_fallback import fit_and_store

    validation = load_data(data_args)["validation"]
    for key, path in made.items():
        rule = fit_and_store(path, None if key == "torch-int8" else "onnx-lean", validation,
                             data_args, threads)
        if rule is not None:
            logger.info("%s: out-of-scope fallback %s", path.name, rule.describe())


def write_variants(args: CompressArguments, source: Path, wanted: set[str],
                   folder: dict[str, Path], texts: list[str]) -> dict[str, Path]:
    made: dict[str, Path] = {}
    overwrite = args.overwrite
    if "torch-int8" in wanted:
        made["torch-int8"] = quantize_torch_folder(source, folder["torch-int8"],
                                                   args.per_channel, overwrite)
    if wanted - {"torch-int8"}:
        made["onnx"] = ort.export_onnx(source, folder["onnx"], overwrite=overwrite)
    if wanted & {"onnx-opt", "onnx-opt-int8"}:
        fused = ort.optimize_onnx(made["onnx"], folder["onnx-opt"], args.optimization_level,
                                  overwrite)
        logger.info("%s: fused %s", folder["onnx-opt"].name, fused)
        made["onnx-opt"] = folder["onnx-opt"]
    if wanted & {"onnx-int8", "onnx-opt-int8"}:
        settings = ort.quantize_dynamic(made["onnx"], folder["onnx-int8"], args.preset,
                                        args.per_channel, overwrite)
        logger.info("%s: preset %s", folder["onnx-int8"].name, settings["preset"])
        made["onnx-int8"] = folder["onnx-int8"]
    if "onnx-opt-int8" in wanted:
        ort.quantize_dynamic(made["onnx-opt"], folder["onnx-opt-int8"], args.preset,
                             args.per_channel, overwrite)
        made["onnx-opt-int8"] = folder["onnx-opt-int8"]
    if "onnx-int8-static" in wanted:
        ort.quantize_static(made["onnx"], folder["onnx-int8-static"],
                            texts[:args.calibration_rows], args.calibration_method,
                            args.calibration_max_length, args.preset, args.per_channel,
                            overwrite=overwrite)
        made["onnx-int8-static"] = folder["onnx-int8-static"]
    return made


def best_int8(made: dict[str, Path]) -> Path | None:
    for key in ("onnx-opt-int8", "onnx-int8", "onnx-int8-static"):
        if key in made:
            return made[key]
    return None


def benchmark_specs(source: str, made: dict[str, Path]) -> list[str]:
    """The source and every variant made, plus the best int8 run by the lean predictor and by
    `pipeline()`: what `compress --benchmark` compares."""
    specs = [f"source={source}"] + [f"{key}={path}" for key, path in made.items()]
    best = best_int8(made)
    if best is not None:
        specs += [f"{best.name}-lean={best}@onnx-lean",
                  f"{best.name}-pipeline={best}@onnx-pipeline"]
    return specs
