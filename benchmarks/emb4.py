"""4-bit embeddings on a student (issue 24): its fused int8 with 8-bit and with 4-bit
embeddings (one scale per row, the default, and blocks of 32 and 256), untrimmed and
vocabulary-trimmed, benchmarked side by side by the lean predictor on the full test split,
each with its own fallback.

    HF_HUB_OFFLINE=1 python benchmarks/emb4.py --model outputs/optimize-full/student-3l-1-3-5 \
        --data_file ../shared/data/clinc150/data_oos_plus.json --output_dir outputs/emb4

Writes OUTPUT_DIR/benchmark/report.{json,md,png} and OUTPUT_DIR/emb4.md (the table below).
Run it on an otherwise idle machine: it times every variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

from slimformer.compression.args import CompressArguments
from slimformer.compression.chains import chain_of, run_chains
from slimformer.compression.passes.base import PassContext
from slimformer.compression.variants import fit_fallbacks
from slimformer.compression.vocab import TrimVocabArguments, trim_vocabulary
from slimformer.data.args import DataArguments
from slimformer.evaluation.benchmark import benchmark_folders
from slimformer.evaluation.settings import BenchmarkSettings

CHAINS = {"int8": "onnx > O2 > int8", "emb4-b32": "onnx > O2 > emb4-b32 > int8",
          "emb4-b256": "onnx > O2 > emb4-b256 > int8", "emb4": "onnx > O2 > emb4 > int8"}


def variants(model: Path, out: Path, prefix: str) -> dict[str, Path]:
    """The model's fused int8 variants (8-bit, then 4-bit word embeddings in blocks of 32 and
    256 and with a scale per row, the default), in out/."""
    chains = [dataclasses.replace(chain_of(spec, CompressArguments()), key=name)
              for name, spec in CHAINS.items()]
    final = {c.key: out / f"{prefix}-{c.key}" for c in chains}
    with tempfile.TemporaryDirectory(dir=out) as scratch:
        return run_chains(model, chains, final, Path(scratch), PassContext())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--data_file", required=True)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--rounds", type=int, default=15)  # 2-core VMs are noisy: 5 was not enough
    args = parser.parse_args()
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=False)
    data = DataArguments(data_file=args.data_file)
    trimmed = trim_vocabulary(TrimVocabArguments(model=args.model,
                                                 output_dir=str(out / "trimmed")), data)
    made = {**variants(Path(args.model), out, "untrimmed"),
            **{f"trimmed-{k}": v for k, v in variants(trimmed, out, "trimmed").items()}}
    fit_fallbacks(made, None, data, threads=2)
    specs = [f"{name if name.startswith('trimmed-') else 'untrimmed-' + name}={p}@onnx-lean"
             for name, p in made.items()]
    paths = benchmark_folders(specs, data, BenchmarkSettings(threads=2, rounds=args.rounds),
                              out / "benchmark", baseline=specs[0].split("=")[0])
    report = json.loads(paths["json"].read_text())
    lines = ["| variant | size MB | test acc. % (fallback) | test acc. % (none) | "
             "p50 ms (rounds) |", "|---|---|---|---|---|"]
    for row in report["variants"]:
        latency = row["latency_ms"]
        lines.append(f"| {row['name']} | {row['size_mb']:.2f} | "
                     f"{100 * row['with_fallback']['accuracy']:.2f} | "
                     f"{100 * row['accuracy']:.2f} | {latency['p50']:.3f} "
                     f"({latency['p50_min']:.3f}-{latency['p50_max']:.3f}) |")
    (out / "emb4.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
