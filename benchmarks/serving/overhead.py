"""The per-request cost above the model, at batch 1: `session.run` on pre-tokenized inputs,
tokenization alone, and `LeanOnnxVariant.predict()` (what the service's batcher calls), over
the same queries, interleaved query by query so that noise hits all three alike.

    python benchmarks/serving/overhead.py FOLDER --data_file ../shared/data/clinc150 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from slimformer.serving.lean import LeanOnnxVariant


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--data_file", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    path = args.data_file / "data_oos_plus.json" if args.data_file.is_dir() else args.data_file
    texts = [row[0] for row in json.loads(path.read_text())["test"]][::7][:args.queries]
    variant = LeanOnnxVariant.load(args.folder, "v", threads=args.threads)
    inputs = [variant.encode([t]) for t in texts]
    for text, encoded in zip(texts[:30], inputs[:30]):  # warm-up
        variant.session.run(None, encoded)
        variant.predict([text])
    timings: dict[str, list[float]] = {"session.run": [], "tokenize": [], "predict()": []}
    for _ in range(args.rounds):
        for text, encoded in zip(texts, inputs):
            start = time.perf_counter()
            variant.session.run(None, encoded)
            middle = time.perf_counter()
            variant.encode([text])
            encoded_at = time.perf_counter()
            variant.predict([text])
            end = time.perf_counter()
            timings["session.run"].append(middle - start)
            timings["tokenize"].append(encoded_at - middle)
            timings["predict()"].append(end - encoded_at)
    p50 = {k: 1000 * statistics.median(v) for k, v in timings.items()}
    above = p50["predict()"] - p50["session.run"]
    result = {"folder": args.folder.name, "threads": args.threads, "queries": len(texts),
              "rounds": args.rounds, "p50_ms": p50, "overhead_ms": above,
              "overhead_share": above / p50["session.run"]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
