"""Every compressed variant of a classifier folder asked for, each a chain of passes
(slimformer.compression.passes): PyTorch int8, ONNX, fused ONNX, ONNX int8, ...

`make_variants` writes them (fused graphs kept only where their median p50 is lower on this
machine); `benchmark_specs` names them for the benchmark, against the source folder.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from slimformer.compression.args import ALL_VARIANTS, CompressArguments
from slimformer.compression.chains import Chain, chain_of, run_chains
from slimformer.compression.passes.base import PassContext
from slimformer.data.args import DataArguments
from slimformer.data.clinc import TEXT_COLUMN
from slimformer.data.dataset import load_data
from slimformer.errors import fail
from slimformer.models.aliases import resolve_path
from slimformer.serving.timing import compare_folders

logger = logging.getLogger(__name__)


def variant_folder(args: CompressArguments, source: Path, chain: Chain) -> Path:
    root = Path(args.output_dir) if args.output_dir else source.parent
    return root / f"{source.name}-{chain.suffix}"


def calibration_texts(data_args: DataArguments, rows: int) -> list[str]:
    train = load_data(dataclasses.replace(data_args, max_samples=None))["train"]
    return train.shuffle(seed=0).select(range(min(rows, len(train))))[TEXT_COLUMN]


def keeps_fused(check: dict[str, Any], min_speedup: float) -> bool:
    """Whether a fused graph stays a candidate, from compare_folders' check against the same
    chain without fusion: its p50 (the median of the rounds) at least `min_speedup` times
    lower, and not measurably slower. Rounds that overlap do not drop it: a few short rounds
    on a busy 2-core machine overlap for graphs 1.2-1.5x apart (docs/optimize.md), and the
    benchmark that follows times every candidate at length before anything is chosen."""
    return check["verdict"] != "slower" and check["speedup"] >= min_speedup


def keep_if_faster(fast: Path, slow: Path, texts: list[str], args: CompressArguments,
                   threads: int, made: dict[str, Path], key: str) -> None:
    """Keep a fused graph only if keeps_fused says so, timed in the benchmark's per-process
    rounds."""
    check = compare_folders((fast, "onnx-lean"), (slow, "onnx-lean"),
                            texts[:20 + args.speedup_queries], threads, args.speedup_rounds)
    kept = keeps_fused(check, args.min_speedup)
    busy = " (machine busy: unreliable)" if check["busy"] else ""
    logger.info("%s: p50 %.2f ms vs %.2f ms for %s, %.2fx, %s%s -> %s", fast.name,
                check["fast_p50_ms"], check["slow_p50_ms"], slow.name, check["speedup"],
                check["verdict"], busy, "kept" if kept else "dropped")
    if not kept:
        shutil.rmtree(fast)  # made by this run a moment ago
        made.pop(key)


def chains_asked(args: CompressArguments) -> list[Chain]:
    """The variants asked for, as checked chains (every pass's config checked now)."""
    if not args.variants:
        fail(f"no variants asked for; choose from {', '.join(ALL_VARIANTS)}, or a chain like "
             "'onnx > O2 > int8'")
    return [chain_of(key, args) for key in dict.fromkeys(args.variants)]


def fused_and_plain(chains: list[Chain]) -> list[tuple[Chain, Chain]]:
    """Each chain with graph fusion, and the same chain without it to compare against."""
    return [(c, c.without("opt")) for c in chains
            if "opt" in {p.name for p in c.passes} and len(c.passes) > 1]


def make_variants(args: CompressArguments, data_args: DataArguments,
                  threads: int) -> dict[str, Path]:
    source = resolve_path(args.model)
    chains = chains_asked(args)
    if not (source / "config.json").is_file():
        fail(f"no model in {source}: config.json is missing")
    pairs = fused_and_plain(chains)
    root = variant_folder(args, source, chains[0]).parent
    root.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".slimformer-steps-", dir=root))
    try:
        final = {c.key: variant_folder(args, source, c) for c in chains}
        texts = calibration_texts(data_args, max(args.calibration_rows,
                                                 20 + args.speedup_queries))
        made = run_chains(source, chains + [plain for _, plain in pairs], final, scratch,
                          PassContext(texts=texts, overwrite=args.overwrite))
        # Fusion is kept only where it helps on this machine (keeps_fused).
        for fused, plain in pairs:
            keep_if_faster(made[fused.key], made[plain.key], texts, args, threads, made,
                           fused.key)
        kept = {c.key: made[c.key] for c in chains if c.key in made}
        fit_fallbacks(kept, {c.key: c.makes for c in chains}, data_args, threads)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)  # this run's intermediate steps only
    return kept


def fit_fallbacks(made: dict[str, Path], makes: dict[str, str] | None,
                  data_args: DataArguments, threads: int) -> None:
    """Each variant's own out-of-scope fallback, fitted on its validation logits (int8 moves
    the logits, so the source model's rule, copied with its config, is replaced). ONNX
    folders are run by the lean predictor, as a service runs them."""
    from slimformer.serving.fit_fallback import fit_and_store

    validation = load_data(data_args)["validation"]
    for key, path in made.items():
        onnx = (makes or {}).get(key, "onnx") == "onnx"
        rule = fit_and_store(path, "onnx-lean" if onnx else None, validation, data_args,
                             threads)
        if rule is not None:
            logger.info("%s: out-of-scope fallback %s", path.name, rule.describe())


def best_int8(made: dict[str, Path]) -> Path | None:
    """The ONNX variant made to run in int8 that is likeliest fastest: fused before dynamic
    int8, then dynamic int8, then any other ONNX chain that quantizes (by its passes, so a
    chain such as "onnx > O2 > int8" counts as onnx-opt-int8 does)."""
    from slimformer.compression.passes.base import parse_chain, registry

    passes = registry()

    def rank(key: str) -> tuple[int, int] | None:
        names = [passes[p].name for p in parse_chain(key)]
        if passes[parse_chain(key)[-1]].makes != "onnx" or \
                not any(passes[n].quantizes for n in names):
            return None
        return ("opt" not in names, "int8" not in names)

    ranked = sorted((r, i, k) for i, k in enumerate(made) if (r := rank(k)) is not None)
    return made[ranked[0][2]] if ranked else None


def benchmark_specs(source: str, made: dict[str, Path]) -> list[str]:
    """The source and every variant made, plus the best int8 run by the lean predictor and by
    `pipeline()`: what `compress --benchmark` compares."""
    specs = [f"source={source}"] + [f"{key}={path}" for key, path in made.items()]
    best = best_int8(made)
    if best is not None:
        specs += [f"{best.name}-lean={best}@onnx-lean",
                  f"{best.name}-pipeline={best}@onnx-pipeline"]
    return specs
