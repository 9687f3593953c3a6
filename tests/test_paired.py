"""The paired test-accuracy difference between variants (evaluation/paired.py), and the
per-row answers the benchmark stores for it."""

import numpy as np
import pytest

from slimformer.errors import SlimformerError
from slimformer.evaluation.paired import (
    difference_to,
    interval_text,
    pack_right,
    paired_difference,
    unpack_right,
)


def agreeing(rows: int, agree: float, accuracy: float, seed: int) -> tuple[np.ndarray, ...]:
    """Two answer vectors that agree on a share `agree` of the rows, as a student and its
    teacher do."""
    rng = np.random.default_rng(seed)
    base = rng.random(rows) < accuracy
    flip = rng.random(rows) >= agree
    return np.where(flip, ~base, base), base


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 5500])
def test_answers_pack_and_unpack_to_themselves(rows):
    right = np.random.default_rng(rows).random(rows) < 0.5
    text = pack_right(right)
    assert isinstance(text, str) and len(text) == 2 * ((rows + 7) // 8)
    assert np.array_equal(unpack_right(text, rows), right)


def test_answers_of_another_length_or_not_hex_fail_in_one_line():
    text = pack_right(np.ones(20, dtype=bool))
    with pytest.raises(SlimformerError, match="not 30 rows"):
        unpack_right(text, 30)
    with pytest.raises(SlimformerError, match="hex string"):
        unpack_right("zz", 8)


def test_the_interval_matches_a_paired_bootstrap():
    right, base = agreeing(5500, 0.95, 0.91, seed=0)
    found = paired_difference(right, base)
    assert found["points"] == pytest.approx(100 * (right.mean() - base.mean()))
    rng = np.random.default_rng(1)
    draws = rng.integers(0, len(right), size=(4000, len(right)))
    diffs = 100 * (right[draws].mean(axis=1) - base[draws].mean(axis=1))
    low, high = np.percentile(diffs, [2.5, 97.5])
    assert found["low"] == pytest.approx(low, abs=0.05)
    assert found["high"] == pytest.approx(high, abs=0.05)
    # Pairing matters: the interval is far narrower than two independent ones would give.
    independent = 1.96 * np.sqrt(2 * 0.91 * 0.09 / len(right)) * 100
    assert found["high"] - found["points"] < 0.8 * independent


def test_the_counts_and_signs_follow_the_rows():
    right = np.array([1, 1, 0, 0, 1, 1], dtype=bool)
    base = np.array([1, 0, 1, 0, 0, 1], dtype=bool)
    found = paired_difference(right, base)
    assert (found["only_this_right"], found["only_base_right"], found["rows"]) == (2, 1, 6)
    assert found["points"] == pytest.approx(100 / 6)
    back = paired_difference(base, right)
    assert back["points"] == pytest.approx(-found["points"])
    assert back["low"] == pytest.approx(-found["high"])
    same = paired_difference(right, right)
    assert same["points"] == same["low"] == same["high"] == 0.0
    with pytest.raises(SlimformerError, match="same rows"):
        paired_difference(right, base[:5])


def test_rows_use_their_fallback_answers_only_when_both_have_them():
    right, base = agreeing(300, 0.8, 0.7, seed=2)
    row = {"test_right": {"argmax": pack_right(right), "with_fallback": pack_right(base)}}
    teacher = {"test_right": {"argmax": pack_right(base), "with_fallback": pack_right(base)}}
    found = difference_to(row, teacher, 300)
    assert found["with_fallback"] and found["points"] == 0.0
    teacher_plain = {"test_right": {"argmax": pack_right(base)}}
    found = difference_to(row, teacher_plain, 300)
    assert not found["with_fallback"]
    assert found["points"] == pytest.approx(100 * (right.mean() - base.mean()))
    assert difference_to({}, teacher, 300) is None  # a report from before the answers
    assert interval_text(None) == "n/a"
    assert interval_text({"points": -0.654, "low": -1.19, "high": -0.113}) == \
        "-0.65 (-1.19 to -0.11)"


def test_the_benchmark_stores_each_rows_answers(clinc, tokenizer, tmp_path):
    """The stored answers are the benchmark's own accuracies row by row, with and without the
    fallback, and the written report's paired difference is the accuracy difference."""
    from slimformer.evaluation.benchmark import measure_accuracy
    from slimformer.evaluation.report import add_ratios
    from slimformer.evaluation.report_data import BenchmarkReport
    from slimformer.serving.torch import TransformersVariant

    from .conftest import tiny_bert

    test = clinc["test"].shuffle(seed=3).select(range(150))
    validation = clinc["validation"].shuffle(seed=0).select(range(200))
    rows = []
    for seed, name in ((0, "one"), (1, "two")):
        import torch

        torch.manual_seed(seed)
        variant = TransformersVariant(tiny_bert(initializer_range=0.5), tokenizer, name)
        row = measure_accuracy(variant, test, 32, "oos", validation)
        right = unpack_right(row["test_right"]["argmax"], len(test))
        fallback = unpack_right(row["test_right"]["with_fallback"], len(test))
        assert right.mean() == pytest.approx(row["accuracy"])
        assert fallback.mean() == pytest.approx(row["with_fallback"]["accuracy"])
        assert row["validation"]["rows"] == len(validation)  # validation's answers too
        assert unpack_right(row["validation"]["right"]["with_fallback"], len(validation)
                            ).mean() == pytest.approx(row["validation"]["with_fallback"]
                                                      ["accuracy"])
        rows.append({"name": name, "kind": "pytorch", "path": name, "size_mb": 1.0,
                     "latency_ms": {"p50": 1.0, "p99": 1.0}, "throughput_qps": 1.0,
                     **row})
    report = add_ratios(BenchmarkReport(environment={}, settings={}, test_rows=len(test),
                                        timing={}, variants=rows), "one")
    found = report.variants[1]["test_difference"]
    assert found["with_fallback"] and found["rows"] == len(test)
    assert found["points"] == pytest.approx(100 * (rows[1]["with_fallback"]["accuracy"]
                                                   - rows[0]["with_fallback"]["accuracy"]))
    assert found["low"] <= found["points"] <= found["high"]
    assert report.variants[0]["test_difference"] is None  # the baseline itself
    from slimformer.evaluation.paired import validation_difference

    on_validation = validation_difference(rows[1], rows[0])
    assert on_validation["rows"] == len(validation) and on_validation["with_fallback"]
    assert on_validation["points"] == pytest.approx(100 * (
        rows[1]["validation"]["with_fallback"]["accuracy"]
        - rows[0]["validation"]["with_fallback"]["accuracy"]))


def test_the_paired_script_reads_any_two_variants_of_a_report(tmp_path):
    """benchmarks/paired.py prints A minus B from a written report, and refuses a bad pair
    in one line."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    right, base = agreeing(400, 0.9, 0.8, seed=5)

    def row(name, answers):
        return {"name": name, "kind": "pytorch", "path": name, "size_mb": 1.0,
                "accuracy": float(answers.mean()), "latency_ms": {"p50": 1.0},
                "test_right": {"argmax": pack_right(answers)}}

    report = {"environment": {"cpu": {}}, "settings": {}, "test_rows": 400, "timing": {},
              "variants": [row("a", right), row("b", base)]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    script = Path(__file__).parents[1] / "benchmarks" / "paired.py"
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "a:b"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = interval_text(paired_difference(right, base))
    assert f"| a | b | {expected} |" in done.stdout
    bad = subprocess.run([sys.executable, str(script), str(tmp_path), "a-b"],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and bad.stderr.strip().startswith("error: a pair is A:B")
