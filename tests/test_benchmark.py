import json

import numpy as np
import pytest
import torch
from PIL import Image

from slimformer.errors import SlimformerError
from slimformer.evaluation.benchmark import benchmark_variants, pick_queries
from slimformer.evaluation.report import write_report
from slimformer.evaluation.settings import BenchmarkSettings
from slimformer.serving.registry import load_variant, parse_spec
from slimformer.serving.timing import NO_DIFFERENCE, latency_stats, latency_summary, speed_verdict
from slimformer.serving.torch import TransformersVariant

from .conftest import tiny_bert

FAST = BenchmarkSettings(threads=1, latency_queries=30, warmup_queries=3, batch_size=16,
                         throughput_batches=2, rounds=3)


@pytest.fixture(scope="module")
def test_split(clinc):
    return clinc["test"].shuffle(seed=1).select(range(160))


def always(label_id: int, tokenizer, name: str) -> TransformersVariant:
    """A tiny BERT whose head ignores its input and always answers `label_id`."""
    model = tiny_bert()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[label_id] = 10.0
    return TransformersVariant(model, tokenizer, name)


@pytest.fixture(scope="module")
def report(test_split, tokenizer):
    variants = [always(42, tokenizer, "always-oos"), always(0, tokenizer, "always-0")]
    return benchmark_variants(variants, test_split, FAST)


def test_constant_model_accuracy_is_its_class_share(report, test_split):
    labels = np.asarray(test_split["intent"])
    oos, zero = (row for row in report.variants)
    assert oos["accuracy"] == pytest.approx(np.mean(labels == 42))
    assert oos["oos_recall"] == 1.0 and oos["in_scope_accuracy"] == 0.0
    assert zero["accuracy"] == pytest.approx(np.mean(labels == 0))
    assert zero["oos_recall"] == 0.0


def test_every_figure_is_sane(report):
    for row in report.variants:
        lat = row["latency_ms"]
        assert lat["n"] == 30 * 3  # every round's queries
        assert len(lat["p50_rounds"]) == 3
        assert lat["p50_min"] <= lat["p50"] <= lat["p50_max"]
        assert lat["p50"] == pytest.approx(float(np.median(lat["p50_rounds"])))
        assert lat["spread"] == pytest.approx((lat["p50_max"] - lat["p50_min"]) / lat["p50"])
        assert 0 < lat["p50_min"] <= lat["p95"] <= lat["p99"]
        assert row["timing_reliable"] == (not row["timing_notes"])
        assert lat["mean"] > 0 and lat["std"] >= 0
        assert row["throughput_qps"] > 0
        assert 0.5 < row["size_mb"] < 10  # ~1M float32 parameters
        assert 50 < row["peak_memory_mb"] < 4000
    env = report.environment
    assert env["threads"] == 1 and env["libraries"]["torch"] == torch.__version__
    assert env["cpu"]["model"] and isinstance(env["cpu"]["vnni"], bool)
    machine = env["machine"]
    assert len(machine["load_before"]) == 3 and machine["other_cores_busy"] >= 0
    assert machine["busy"] == bool(machine["busy_reasons"])


def test_each_variant_is_timed_in_its_own_process(report):
    import os

    timing = report.timing
    assert timing["method"] == "per-process rounds"
    pids = {row["name"]: row["pids"] for row in report.variants}
    # One process per variant, kept across rounds, neither this one nor the other's.
    assert all(len(p) == 1 for p in pids.values())
    assert pids["always-oos"] != pids["always-0"]
    assert os.getpid() not in pids["always-oos"] + pids["always-0"]
    assert timing["parent_pid"] == os.getpid()


def test_rounds_alternate(report):
    turns = report.timing["turns"]
    assert [t["variant"] for t in turns] == ["always-oos", "always-0"] * 3
    assert [t["round"] for t in turns] == [0, 0, 1, 1, 2, 2]
    # Turns never overlap: each starts after the previous one ended.
    for before, after in zip(turns, turns[1:]):
        assert after["start"] >= before["end"]


def test_reports_are_written(report, tmp_path):
    paths = write_report(report, tmp_path, baseline="always-0")
    saved = json.loads(paths["json"].read_text())
    assert saved["baseline"] == "always-0"
    base = saved["variants"][1]
    assert base["ratios"]["p50 ms"] == pytest.approx(1.0)
    other = saved["variants"][0]
    assert other["ratios"]["Size MB"] == pytest.approx(other["size_mb"] / base["size_mb"])
    # No fallback here: the paired difference is the argmax accuracies' difference.
    assert base["test_difference"] is None
    assert not other["test_difference"]["with_fallback"]
    assert other["test_difference"]["points"] == pytest.approx(other["accuracy_delta_points"])
    markdown = paths["md"].read_text()
    assert "| always-oos |" in markdown and "×base" in markdown
    assert "Test acc. vs baseline, pt (95% interval)" in markdown
    assert f"{other['test_difference']['points']:+.2f} (" in markdown
    with Image.open(paths["png"]) as image:
        image.verify()
        assert image.format == "PNG" and image.size[0] > 300


def test_unknown_baseline(report, tmp_path):
    with pytest.raises(SlimformerError, match="baseline 'nope'"):
        write_report(report, tmp_path, baseline="nope")


def test_latency_stats():
    stats = latency_stats([0.001, 0.002, 0.003, 0.004])
    assert stats["p50"] == pytest.approx(2.5) and stats["mean"] == pytest.approx(2.5)
    assert stats["p99"] <= 4.0


def test_round_p50s_and_verdicts():
    fast = latency_summary([[0.001] * 5, [0.0011] * 5, [0.0012] * 5])
    slow = latency_summary([[0.002] * 5, [0.0021] * 5, [0.0019] * 5])
    assert fast["p50"] == pytest.approx(1.1) and fast["p50_max"] == pytest.approx(1.2)
    assert speed_verdict(fast, slow) == "faster" and speed_verdict(slow, fast) == "slower"
    overlapping = latency_summary([[0.00115] * 5, [0.0013] * 5, [0.0014] * 5])
    assert speed_verdict(fast, overlapping) == NO_DIFFERENCE


def test_speed_claims_need_ranges_apart(report, tmp_path):
    import copy

    report = copy.deepcopy(report)
    oos, zero = report.variants
    zero["latency_ms"].update(p50=1.0, p50_min=0.9, p50_max=1.1)
    oos["latency_ms"].update(p50=2.0, p50_min=1.05, p50_max=2.2)  # overlaps: no claim
    oos["timing_reliable"], oos["timing_notes"] = False, ["round p50s differ by 58% (> 15%)"]
    markdown = write_report(report, tmp_path, baseline="always-0")["md"].read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| always-oos |"))
    assert NO_DIFFERENCE in row and "slower" not in row
    assert "⚠ not reliable: round p50s differ by 58%" in row
    oos["latency_ms"].update(p50_min=1.5)  # now apart: 2x slower
    markdown = write_report(report, tmp_path, baseline="always-0")["md"].read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| always-oos |"))
    assert "2.00× slower" in row


def test_queries_are_distinct(test_split):
    queries = pick_queries(test_split, 100, seed=0)
    assert len(set(queries)) == 100
    with pytest.raises(SlimformerError, match="distinct queries"):
        pick_queries(test_split, 10_000, seed=0)


def test_folder_variant_matches_in_memory(tiny_bert_folder, tokenizer):
    loaded = load_variant(f"tiny={tiny_bert_folder}", threads=1)
    assert loaded.kind == "pytorch" and loaded.name == "tiny"
    texts = ["what is my balance", "book a table for two"]
    expected = TransformersVariant(tiny_bert(), tokenizer, "mem").predict_logits(texts)
    np.testing.assert_allclose(loaded.predict_logits(texts), expected, atol=1e-5)
    assert loaded.size_mb() == pytest.approx(
        (tiny_bert_folder / "model.safetensors").stat().st_size / 1e6)


def test_bad_variants(tmp_path, tiny_bert_folder, test_split, tokenizer):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SlimformerError, match="no model in"):
        load_variant(str(tmp_path / "empty"), threads=1)
    with pytest.raises(SlimformerError, match="not found"):
        load_variant(f"x={tmp_path / 'absent'}")
    with pytest.raises(SlimformerError, match="unknown variant kind 'tflite'"):
        load_variant(f"x={tiny_bert_folder}@tflite")
    assert parse_spec("a=some/dir@onnx") == ("a", "some/dir", "onnx")
    wrong = TransformersVariant(tiny_bert(id2label={i: f"x{i}" for i in range(151)}),
                                tokenizer, "wrong-labels")
    with pytest.raises(SlimformerError, match="label id 0 is 'x0'"):
        benchmark_variants([wrong], test_split, FAST)


def test_peak_memory_is_the_variant_process_not_its_parent(tiny_bert_folder, test_split):
    ballast = bytearray(1500 * 1024 * 1024)  # a parent far bigger than a tiny model needs
    ballast[:: 4096] = b"\x01" * len(ballast[:: 4096])
    variant = load_variant(f"tiny={tiny_bert_folder}", threads=1)
    report = benchmark_variants([variant], test_split, FAST)
    peak = report.variants[0]["peak_memory_mb"]
    assert 50 < peak < 1400, peak
    del ballast


def test_the_written_report_reads_back_as_the_report(report, tmp_path):
    from slimformer.evaluation.report_data import load_report

    paths = write_report(report, tmp_path, baseline="always-0")
    assert load_report(paths["json"]) == report
