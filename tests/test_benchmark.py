import json

import numpy as np
import pytest
import torch
from PIL import Image

from slimformer.benchmark import BenchmarkSettings, benchmark_variants, latency_stats, pick_queries
from slimformer.errors import SlimformerError
from slimformer.report import write_report
from slimformer.torch_variant import TransformersVariant
from slimformer.variants import load_variant, parse_spec

from .conftest import tiny_bert

FAST = BenchmarkSettings(threads=1, latency_queries=30, warmup_queries=3, batch_size=16,
                         throughput_batches=2)


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
    oos, zero = (row for row in report["variants"])
    assert oos["accuracy"] == pytest.approx(np.mean(labels == 42))
    assert oos["oos_recall"] == 1.0 and oos["in_scope_accuracy"] == 0.0
    assert zero["accuracy"] == pytest.approx(np.mean(labels == 0))
    assert zero["oos_recall"] == 0.0


def test_every_figure_is_sane(report):
    for row in report["variants"]:
        lat = row["latency_ms"]
        assert lat["n"] == 30
        assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"]
        assert lat["mean"] > 0 and lat["std"] >= 0
        assert row["throughput_qps"] > 0
        assert 0.5 < row["size_mb"] < 10  # ~1M float32 parameters
        assert 50 < row["peak_memory_mb"] < 4000
    env = report["environment"]
    assert env["threads"] == 1 and env["libraries"]["torch"] == torch.__version__
    assert env["cpu"]["model"]


def test_reports_are_written(report, tmp_path):
    paths = write_report(report, tmp_path, baseline="always-0")
    saved = json.loads(paths["json"].read_text())
    assert saved["baseline"] == "always-0"
    base = saved["variants"][1]
    assert base["ratios"]["p50 ms"] == pytest.approx(1.0)
    other = saved["variants"][0]
    assert other["ratios"]["Size MB"] == pytest.approx(other["size_mb"] / base["size_mb"])
    markdown = paths["md"].read_text()
    assert "| always-oos |" in markdown and "×base" in markdown
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


def test_peak_memory_is_the_child_not_its_parent(tiny_bert_folder):
    from slimformer.benchmark import measure_peak_memory

    ballast = bytearray(1500 * 1024 * 1024)  # a parent far bigger than a tiny model needs
    ballast[:: 4096] = b"\x01" * len(ballast[:: 4096])
    variant = load_variant(f"tiny={tiny_bert_folder}", threads=1)
    peak = measure_peak_memory(variant, ["hello there", "what is my balance"], threads=1)
    assert 50 < peak < 1400, peak
    del ballast
