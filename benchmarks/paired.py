"""Paired test-accuracy differences between variants of one benchmark report, with 95%
intervals: each pair's difference is counted query by query over the same test rows.

    python benchmarks/paired.py outputs/students-that-pay/benchmark \
        student-3l-transfer-set:student-3l-labels student-3l-transfer-set:student-3l-plain

Each PAIR is A:B and prints A's accuracy minus B's (with both fallbacks where both have one),
its 95% interval and the rows only one of them answers right. The report needs per-row
answers (`slimformer benchmark` writes them since the paired intervals were added). Reads the
report only: no model is loaded and nothing is timed.
"""

from __future__ import annotations

import argparse
import sys

from slimformer.errors import SlimformerError, fail
from slimformer.evaluation.paired import difference_to, interval_text
from slimformer.evaluation.report_data import load_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="a benchmark report.json or the folder holding it")
    parser.add_argument("pairs", nargs="+", metavar="A:B", help="variant names, A minus B")
    args = parser.parse_args()
    report = load_report(args.report)
    print("| A | B | A minus B, pt (95% interval) | only A right | only B right | with fallback |")
    print("|---|---|---|---|---|---|")
    for pair in args.pairs:
        first, sep, second = pair.partition(":")
        if not sep or not first or not second:
            fail(f"a pair is A:B (two variant names), got {pair!r}")
        found = difference_to(report.row(first), report.row(second), report.test_rows)
        if found is None:
            fail(f"{args.report} has no per-row answers for {first} or {second}: benchmark "
                 "them again")
        print(f"| {first} | {second} | {interval_text(found)} | {found['only_this_right']} | "
              f"{found['only_base_right']} | {'yes' if found['with_fallback'] else 'no'} |")


if __name__ == "__main__":
    try:
        main()
    except SlimformerError as err:  # one line, as the CLI prints them
        sys.exit(f"error: {err}")
