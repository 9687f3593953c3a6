"""ONNX variants on tiny BERT and DistilBERT: export, fusion, int8 (dynamic, static, after
fusion), pipeline(), the lean predictor, and the errors bad input gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from optimum.onnxruntime import pipeline as ort_pipeline
from transformers import AutoModelForSequenceClassification as AutoClassifier
from transformers import (
    BertConfig,
    BertTokenizerFast,
    DistilBertConfig,
    DistilBertTokenizerFast,
    RoFormerConfig,
)

from slimformer.compression import onnx as ort
from slimformer.compression.onnx.optimize import has_cuda
from slimformer.errors import SlimformerError
from slimformer.models.aliases import resolve_model
from slimformer.provenance import read_provenance
from slimformer.serving.lean import LeanOnnxVariant
from slimformer.serving.ort import OrtVariant, PipelineVariant
from slimformer.serving.registry import detect_kind, load_variant
from slimformer.serving.torch import TransformersVariant
from slimformer.serving.variant import weights_size_mb

TEXTS = ["what is my bank balance", "book me a flight to paris tomorrow",
         "play some jazz music", "how do i say thank you in french",
         "set an alarm for 7am", "what's the weather like", "transfer $100 to savings",
         "tell me a joke", "is my card blocked", "how many calories in an apple",
         "order more paper towels", "cancel my reservation", "who made you",
         "change my pin number please", "what's the exchange rate for euros",
         "remind me to call mom"]
INT8 = ("int8", "int8-static", "O2-int8")


def tiny_config(arch: str) -> object:
    # Wide initialization so that a random tiny model predicts several classes.
    common = {"vocab_size": 30522, "num_labels": 7, "initializer_range": 0.2}
    if arch == "bert":
        return BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=256, **common)
    return DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=256, **common)


def save_tiny(folder: Path, config: object, tokenizer_class: type) -> Path:
    torch.manual_seed(0)
    AutoClassifier.from_config(config).eval().save_pretrained(folder, safe_serialization=True)
    tokenizer_class.from_pretrained(resolve_model("minilm")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def variants(request, tmp_path_factory) -> dict[str, Path]:
    """Every ONNX variant of one tiny classifier, made once per architecture."""
    root = tmp_path_factory.mktemp(request.param)
    tokenizer = BertTokenizerFast if request.param == "bert" else DistilBertTokenizerFast
    folders = {"source": save_tiny(root / "model", tiny_config(request.param), tokenizer)}
    folders["onnx"] = ort.export_onnx(folders["source"], root / "model-onnx")
    for key in ("O2", *INT8):
        folders[key] = root / f"model-onnx-{key}"
    ort.optimize_onnx(folders["onnx"], folders["O2"], "O2")
    ort.quantize_dynamic(folders["onnx"], folders["int8"])
    ort.quantize_static(folders["onnx"], folders["int8-static"], TEXTS * 2, method="minmax")
    ort.quantize_dynamic(folders["O2"], folders["O2-int8"])
    return folders


@pytest.fixture(scope="module")
def fp32_logits(variants) -> np.ndarray:
    logits = TransformersVariant.load(variants["source"], "fp32", 1).predict_logits(TEXTS)
    assert len(set(logits.argmax(-1))) > 2, "the tiny model must predict several classes"
    return logits


def ort_logits(folder: Path) -> np.ndarray:
    return OrtVariant.load(folder, "v", 1).predict_logits(TEXTS)


def test_export_matches_pytorch(variants, fp32_logits):
    logits = ort_logits(variants["onnx"])
    np.testing.assert_array_equal(logits.argmax(-1), fp32_logits.argmax(-1))
    assert np.abs(logits - fp32_logits).max() < 1e-4
    assert detect_kind(variants["onnx"]) == "onnx"
    assert read_provenance(variants["onnx"])["steps"][-1]["step"] == "onnx-export"


def test_optimized_graph_is_fused_and_equivalent(variants, fp32_logits):
    counts = ort.op_counts(variants["O2"] / "model.onnx")
    assert counts.get("Attention", 0) + counts.get("MultiHeadAttention", 0) >= 2
    assert counts.get("SkipLayerNormalization", 0) >= 2
    assert "Softmax" in ort.op_counts(variants["onnx"] / "model.onnx")  # the unfused graph
    step = read_provenance(variants["O2"])["steps"][-1]
    assert step["step"] == "onnx-optimize" and step["settings"]["level"] == "O2"
    assert step["settings"]["fused_ops"]["SkipLayerNormalization"] == counts[
        "SkipLayerNormalization"]
    assert np.abs(ort_logits(variants["O2"]) - fp32_logits).max() < 1e-3


@pytest.mark.parametrize("key", INT8)
def test_int8_graphs_are_integer_smaller_and_agree(variants, fp32_logits, key):
    counts = ort.op_counts(variants[key] / "model.onnx")
    integer_ops = ort.integer_op_counts(counts)
    assert integer_ops, f"no integer operators in {key}: {counts}"
    if key != "int8-static":  # static graphs are in QDQ format: QuantizeLinear pairs
        assert "MatMulInteger" in integer_ops or "QAttention" in integer_ops
    # The tiny model's embeddings (30522 x 64, quantized only by static) dominate its size;
    # the matrices of the encoder are what int8 shrinks.
    assert weights_size_mb(variants[key]) < 0.9 * weights_size_mb(variants["onnx"])
    agree = (ort_logits(variants[key]).argmax(-1) == fp32_logits.argmax(-1)).mean()
    assert agree >= 0.75
    step = read_provenance(variants[key])["steps"][-1]
    assert step["step"] == ("onnx-quantize-static" if key == "int8-static"
                            else "onnx-quantize-dynamic")


def test_quantize_after_optimize_keeps_fused_ops(variants):
    counts = ort.op_counts(variants["O2-int8"] / "model.onnx")
    assert "QAttention" in counts and "SkipLayerNormalization" in counts
    steps = [s["step"] for s in read_provenance(variants["O2-int8"])["steps"]]
    assert steps[-3:] == ["onnx-export", "onnx-optimize", "onnx-quantize-dynamic"]


@pytest.mark.parametrize("key", ["onnx", "O2", *INT8])
def test_pipeline_loads_each_variant_folder(variants, key):
    pipe = ort_pipeline("text-classification", model=str(variants[key]))
    variant = OrtVariant.load(variants[key], "v", 1)
    # One text at a time, as the pipeline runs them (int8 activations are quantized per batch).
    expected = [variant.labels[int(variant.predict_logits([t]).argmax())] for t in TEXTS]
    assert [out["label"] for out in pipe(TEXTS)] == expected


@pytest.mark.parametrize("key", ["onnx", "O2-int8"])
def test_lean_predictor_matches_pipeline(variants, key):
    lean = LeanOnnxVariant.load(variants[key], "lean", 1)
    pipe = PipelineVariant.load(variants[key], "pipe", 1)
    for text in TEXTS:
        np.testing.assert_allclose(lean.predict_logits([text]), pipe.predict_logits([text]),
                                   atol=1e-5)
    batch = OrtVariant.load(variants[key], "ort", 1).predict_logits(TEXTS)
    np.testing.assert_allclose(lean.predict_logits(TEXTS), batch, atol=1e-5)
    labels = pipe.labels
    assert lean.predict(TEXTS[:3]) == [labels[int(i)] for i in
                                       pipe.predict_logits(TEXTS[:3]).argmax(-1)]


def test_lean_predictor_never_imports_torch(variants):
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from slimformer.serving.registry import load_variant\n"
        f"v = load_variant({str(variants['int8'])!r} + '@onnx-lean', threads=1)\n"
        "labels = v.predict(['what is my bank balance', 'book a flight'])\n"
        "heavy = [m for m in ('torch', 'transformers', 'optimum') if m in sys.modules]\n"
        "print(json.dumps({'labels': labels, 'heavy': heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, check=True)
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["heavy"] == []
    assert len(out["labels"]) == 2 and all(label.startswith("LABEL_") for label in out["labels"])


def test_chosen_preset_follows_cpu_flags():
    assert ort.choose_preset("auto", {"avx2", "avx512f", "avx512_vnni"}) == "avx512_vnni"
    assert ort.choose_preset("auto", {"avx", "avx2"}) == "avx2"
    assert ort.choose_preset("auto", {"asimd", "fp"}) == "arm64"
    assert ort.choose_preset("avx2", {"avx2"}) == "avx2"
    with pytest.raises(SlimformerError, match="needs the avx512_vnni instruction set.*'avx2'"):
        ort.choose_preset("avx512_vnni", {"avx2"})
    with pytest.raises(SlimformerError, match="no int8 preset fits"):
        ort.choose_preset("auto", {"sse4_2"})
    with pytest.raises(SlimformerError, match="unknown quantization preset"):
        ort.choose_preset("avx9", {"avx2"})


def test_bad_input_fails_with_a_message(variants, tmp_path):
    with pytest.raises(SlimformerError, match="config.json is missing"):
        ort.export_onnx(tmp_path, tmp_path / "out")
    with pytest.raises(SlimformerError, match="model folder not found"):
        ort.export_onnx(tmp_path / "nothing", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in variants["onnx"].iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    data = (variants["onnx"] / "model.onnx").read_bytes()
    (broken / "model.onnx").write_bytes(data[: len(data) // 2])
    for action in (lambda: OrtVariant.load(broken, "b", 1),
                   lambda: ort.quantize_dynamic(broken, tmp_path / "q"),
                   lambda: ort.optimize_onnx(broken, tmp_path / "o"),
                   lambda: LeanOnnxVariant.load(broken, "b", 1)):
        with pytest.raises(SlimformerError, match="truncated or not ONNX"):
            action()
    (broken / "model.onnx").write_text("hello, I am not a graph")
    with pytest.raises(SlimformerError, match="not a valid ONNX model"):
        OrtVariant.load(broken, "b", 1)
    assert not (tmp_path / "q").exists() and not (tmp_path / "o").exists()
    with pytest.raises(SlimformerError, match="at least 16"):
        ort.quantize_static(variants["onnx"], tmp_path / "s", TEXTS[:5])
    with pytest.raises(SlimformerError, match="already quantized"):
        ort.quantize_dynamic(variants["int8"], tmp_path / "qq")
    with pytest.raises(SlimformerError, match="unknown calibration method"):
        ort.quantize_static(variants["onnx"], tmp_path / "s", TEXTS * 2, method="median")
    with pytest.raises(SlimformerError, match="unknown optimization level"):
        ort.optimize_onnx(variants["onnx"], tmp_path / "o", "O7")
    if not has_cuda():
        with pytest.raises(SlimformerError, match="O4 .* needs a CUDA GPU"):
            ort.optimize_onnx(variants["onnx"], tmp_path / "o", "O4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SlimformerError, match="no model in"):
        load_variant(str(tmp_path / "empty"))


def test_unsupported_architecture_for_fusion(tmp_path):
    # RoFormer exports to ONNX, but ORTOptimizer has no fusion patterns for it.
    config = RoFormerConfig(vocab_size=30522, hidden_size=32, embedding_size=32,
                            num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                            num_labels=3)
    source = save_tiny(tmp_path / "roformer", config, BertTokenizerFast)
    exported = ort.export_onnx(source, tmp_path / "roformer-onnx")
    with pytest.raises(SlimformerError, match="model type 'roformer'"):
        ort.optimize_onnx(exported, tmp_path / "roformer-O2", "O2")
    assert not (tmp_path / "roformer-O2").exists()
    assert not list(tmp_path.glob(".roformer-O2*"))  # no half-written folder either
    # Quantizing its plain export still works.
    ort.quantize_dynamic(exported, tmp_path / "roformer-int8")
    assert "MatMulInteger" in ort.op_counts(tmp_path / "roformer-int8" / "model.onnx")


def test_avx2_dynamic_int8_stores_signed_weights(variants, tmp_path):
    """The avx2 preset quantizes weights to int8 (ONNX Runtime's u8s8 kernels), activations
    to uint8, and records both."""
    import onnx

    from slimformer.compression.onnx.quantize import cpu_flags

    if "avx2" not in cpu_flags():
        pytest.skip("this CPU has no avx2")
    settings = ort.quantize_dynamic(variants["O2"], tmp_path / "avx2", preset="avx2")
    assert (settings["weights"], settings["activations"]) == ("QInt8", "QUInt8")
    assert settings["reduce_range"] is True  # 7-bit weights: VPMADDUBSW cannot saturate
    graph = onnx.load(str(tmp_path / "avx2" / "model.onnx")).graph
    types = {init.name: init.data_type for init in graph.initializer}
    weights = [node.input[1] for node in graph.node
               if node.op_type in ("MatMulInteger", "QAttention")]
    assert weights and {types[name] for name in weights} == {onnx.TensorProto.INT8}
    agree = (ort_logits(tmp_path / "avx2").argmax(-1) ==
             ort_logits(variants["O2"]).argmax(-1)).mean()
    assert agree >= 0.75


def test_avx2_int8_keeps_the_answers_of_a_model_with_large_weights(tmp_path):
    """Full-range int8 weights saturate avx2's VPMADDUBSW on large weights: a tiny BERT at
    initializer_range 0.5 then agreed with its float graph on 4 of these 16 queries, its
    logits 1.24 off on average; with 7-bit weights, 10 of 16 and 0.27."""
    from slimformer.compression.onnx.quantize import cpu_flags

    from .conftest import tiny_bert

    if "avx2" not in cpu_flags():
        pytest.skip("this CPU has no avx2")
    tiny_bert(initializer_range=0.5).save_pretrained(tmp_path / "model")
    BertTokenizerFast.from_pretrained(resolve_model("minilm")).save_pretrained(tmp_path / "model")
    ort.export_onnx(tmp_path / "model", tmp_path / "onnx")
    ort.quantize_dynamic(tmp_path / "onnx", tmp_path / "int8", preset="avx2")
    float_logits, int8_logits = ort_logits(tmp_path / "onnx"), ort_logits(tmp_path / "int8")
    assert (int8_logits.argmax(-1) == float_logits.argmax(-1)).mean() >= 0.5
    assert np.abs(int8_logits - float_logits).mean() < 0.5
