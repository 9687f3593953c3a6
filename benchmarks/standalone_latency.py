"""Time one model folder alone, with the plain libraries, on the benchmark's own queries.

    python benchmarks/standalone_latency.py FOLDER --kind pytorch --queries queries.json

The reference that `recipes/benchmark.py` is checked against (benchmarks/check_benchmark.py):
nothing of slimformer's timing code runs here, only transformers + torch for a PyTorch folder
or onnxruntime + tokenizers for an ONNX one, in a process that holds this model alone. The
queries are the benchmark's (benchmarks/check_benchmark.py writes them to a JSON file: the
warm-up queries, then the timed ones); each round runs the warm-up, then every query at
batch 1, tokenization included. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def pytorch_predictor(folder: Path, threads: int, max_length: int):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.set_num_threads(threads)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()

    def predict(text: str) -> np.ndarray:
        with torch.inference_mode():
            inputs = tokenizer([text], padding=True, truncation=True, max_length=max_length,
                               return_tensors="pt")
            return model(**inputs).logits.numpy()

    return predict


def onnx_predictor(folder: Path, threads: int, max_length: int):
    import onnxruntime
    from tokenizers import Tokenizer

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options,
                                           providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()  # tokenizer.json may pad to a fixed 128; one text needs none

    def predict(text: str) -> np.ndarray:
        encoding = tokenizer.encode(text)
        arrays = {"input_ids": [encoding.ids], "attention_mask": [encoding.attention_mask],
                  "token_type_ids": [encoding.type_ids]}
        return session.run(None, {n: np.asarray(arrays[n], dtype=np.int64) for n in names})[0]

    return predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--kind", choices=("pytorch", "onnx"), required=True)
    parser.add_argument("--queries", type=Path, required=True,
                        help="JSON list of the warm-up queries, then the timed ones")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup_queries", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max_length", type=int, default=128)
    args = parser.parse_args()
    queries = json.loads(args.queries.read_text())
    warmup, timed = queries[:args.warmup_queries], queries[args.warmup_queries:]
    make = pytorch_predictor if args.kind == "pytorch" else onnx_predictor
    predict = make(args.folder, args.threads, args.max_length)
    round_p50s = []
    for _ in range(args.rounds):
        for text in warmup:
            predict(text)
        seconds = []
        for text in timed:
            start = time.perf_counter()
            predict(text)
            seconds.append(time.perf_counter() - start)
        round_p50s.append(1000 * statistics.median(seconds))
    print(json.dumps({"folder": str(args.folder), "kind": args.kind,
                      "p50_ms": statistics.median(round_p50s), "round_p50_ms": round_p50s,
                      "threads": args.threads, "queries": len(timed)}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
