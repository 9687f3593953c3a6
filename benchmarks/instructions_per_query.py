"""Instructions per query of ONNX variants, counted by valgrind's callgrind: a cost that other
load on the machine does not move, for when wall-clock rounds are too noisy to compare
(docs/distillation.md, 4-bit embeddings). Each folder runs on the lean predictor with 1 thread
on the first N test queries at batch 1, tokenization included; the same program with
0 queries is subtracted, so what remains is the per-query work. Valgrind's CPU has no AVX-512:
ONNX Runtime takes its avx2 kernels there.

    python benchmarks/instructions_per_query.py \\
        --data_file ../shared/data/clinc150/data_oos_plus.json --output outputs/instructions.md \\
        int8=outputs/emb4/untrimmed-int8 emb4=outputs/emb4/untrimmed-emb4

Needs Debian's valgrind. Slow (about 3 minutes per folder at 200 queries), but any load is fine.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def run_queries(folder: str, data_file: str, count: int) -> None:
    """The program callgrind counts: the lean predictor (the service's own code: its tokenizer
    settings and session options) on one thread, `count` queries at batch 1."""
    from slimformer.data.args import DataArguments
    from slimformer.data.dataset import load_data
    from slimformer.serving.lean import LeanOnnxVariant

    predictor = LeanOnnxVariant.load(Path(folder), Path(folder).name, 1)
    # loaded with 0 queries too, so that the subtraction leaves the queries alone
    texts = load_data(DataArguments(data_file=data_file))["test"]["text"][:count]
    for text in texts:
        predictor.predict_logits([text])


def instructions(folder: str, data_file: str, count: int) -> int:
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out",
             sys.executable, __file__, "--child", folder, "--data_file", data_file,
             "--queries", str(count)], capture_output=True, text=True, check=True,
            env={**os.environ, "PYTHONHASHSEED": "0"})  # the interpreter's work, repeatable
    return int(re.search(r"Collected : (\d+)", done.stderr).group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variants", nargs="*", help="NAME=FOLDER (the first is the baseline)")
    parser.add_argument("--data_file", required=True)
    parser.add_argument("--output")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_queries(args.child, args.data_file, args.queries)
        return
    if not args.variants:
        parser.error("name at least one NAME=FOLDER")
    if not args.output:
        parser.error("--output is required")
    if Path(args.output).exists():
        parser.error(f"{args.output} exists; choose a new --output")
    if args.queries < 1:
        parser.error(f"--queries must be at least 1, got {args.queries}")
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    variants = [spec.partition("=")[::2] for spec in args.variants]
    for spec, (name, folder) in zip(args.variants, variants):
        if not (name and (Path(folder) / "model.onnx").is_file()
                and (Path(folder) / "tokenizer.json").is_file()):
            parser.error(f"{spec!r}: expected NAME=FOLDER, the folder holding model.onnx and "
                         "tokenizer.json")
    lines = ["| variant | instructions per query | vs the first | instructions with 0 queries |",
             "|---|---|---|---|"]
    first = None
    for name, folder in variants:
        empty = instructions(folder, args.data_file, 0)
        per_query = (instructions(folder, args.data_file, args.queries) - empty) / args.queries
        first = first or per_query
        lines.append(f"| {name} | {per_query / 1e6:.3f} M | {100 * (per_query / first - 1):+.1f}% "
                     f"| {empty / 1e6:.0f} M |")
        print(lines[-1], flush=True)
    Path(args.output).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
