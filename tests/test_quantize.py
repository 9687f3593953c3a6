"""PyTorch dynamic int8: the safetensors format reloads to identical logits, without pickle."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForSequenceClassification as AutoClassifier
from transformers import BertConfig, BertTokenizerFast, DistilBertConfig, DistilBertTokenizerFast

from slimformer.compression.torch_int8 import (
    MARKER_NAME,
    WEIGHTS_NAME,
    TorchInt8Variant,
    load_torch_int8,
    quantize_torch_folder,
    torch_int8_pipeline,
)
from slimformer.errors import SlimformerError
from slimformer.models.aliases import resolve_model
from slimformer.provenance import read_provenance
from slimformer.serving.registry import detect_kind, load_variant
from slimformer.serving.torch import TransformersVariant

TEXTS = ["what is my bank balance", "book me a flight to paris tomorrow",
         "play some jazz music", "how do i say thank you in french",
         "set an alarm for 7am", "what's the weather like", "transfer $100 to savings",
         "tell me a joke", "is my card blocked", "how many calories in an apple",
         "order more paper towels", "cancel my reservation"]


def tiny_config(arch: str) -> object:
    common = {"vocab_size": 30522, "num_labels": 7}
    if arch == "bert":
        return BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=256, initializer_range=0.2, **common)
    return DistilBertConfig(dim=64, n_layers=2, n_heads=4, hidden_dim=256,
                            initializer_range=0.2, **common)


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def source(request, tmp_path_factory) -> Path:
    """A tiny randomly initialized classifier saved like a fine-tuned one (safetensors)."""
    folder = tmp_path_factory.mktemp(request.param) / "model"
    torch.manual_seed(0)
    model = AutoClassifier.from_config(tiny_config(request.param)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    # The MiniLM folder's vocab (bert-base-uncased), with the tokenizer class of the architecture.
    tokenizer_class = BertTokenizerFast if request.param == "bert" else DistilBertTokenizerFast
    tokenizer_class.from_pretrained(resolve_model("minilm")).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def int8_folder(source: Path) -> Path:
    return quantize_torch_folder(source, source.parent / "model-torch-int8")


def test_int8_folder_holds_int8_weights_and_provenance(source: Path, int8_folder: Path):
    names = sorted(p.name for p in int8_folder.iterdir())
    assert WEIGHTS_NAME in names and MARKER_NAME in names and "config.json" in names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))]
    with safe_open(str(int8_folder / WEIGHTS_NAME), "pt") as f:
        int8_keys = [k for k in f.keys() if k.endswith(".weight_int8")]
        assert int8_keys and all(f.get_tensor(k).dtype == torch.int8 for k in int8_keys)
    marker = json.loads((int8_folder / MARKER_NAME).read_text())
    assert len(marker["modules"]) == len(int8_keys)
    steps = read_provenance(int8_folder)["steps"]
    assert steps[-1]["step"] == "quantize-dynamic-torch"
    assert load_variant(str(int8_folder)).size_mb() < TransformersVariant.load(
        source, "fp32", 1).size_mb()


def test_reload_gives_identical_logits_without_pickle(source: Path, int8_folder: Path,
                                                      monkeypatch):
    in_memory = TorchInt8Variant.from_float(TransformersVariant.load(source, "fp32", 1), "mem")

    def refuse(*args, **kwargs):
        raise AssertionError("loading the int8 format must not unpickle anything")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    reloaded = TorchInt8Variant.load(int8_folder, "int8", 1)
    np.testing.assert_array_equal(reloaded.predict_logits(TEXTS), in_memory.predict_logits(TEXTS))


def test_int8_agrees_with_fp32(source: Path, int8_folder: Path):
    fp32 = TransformersVariant.load(source, "fp32", 1).predict_logits(TEXTS)
    int8 = load_variant(str(int8_folder)).predict_logits(TEXTS)
    assert len(set(fp32.argmax(-1))) > 1, "the tiny model must not predict one class for all"
    assert (fp32.argmax(-1) == int8.argmax(-1)).mean() >= 0.75
    assert not np.array_equal(fp32, int8)  # it really is quantized


def test_kind_detected_and_pipeline_loads(int8_folder: Path):
    assert detect_kind(int8_folder) == "pytorch-int8"
    pipe = torch_int8_pipeline(int8_folder)
    variant = TorchInt8Variant.load(int8_folder, "int8", 1)
    # One text at a time, as the pipeline runs them: int8 activations are quantized per batch.
    expected = [variant.labels[int(variant.predict_logits([t]).argmax())] for t in TEXTS]
    assert [out["label"] for out in pipe(TEXTS)] == expected


def test_saving_an_in_memory_variant_round_trips(source: Path, tmp_path: Path):
    variant = TorchInt8Variant.from_float(TransformersVariant.load(source, "fp32", 1), "mem")
    variant.save(tmp_path / "saved")
    reloaded = load_variant(f"x={tmp_path / 'saved'}")
    np.testing.assert_array_equal(reloaded.predict_logits(TEXTS), variant.predict_logits(TEXTS))


def test_bad_folders_fail_with_a_message(source: Path, int8_folder: Path, tmp_path: Path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SlimformerError, match="config.json is missing"):
        quantize_torch_folder(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(SlimformerError, match="already a PyTorch int8"):
        quantize_torch_folder(int8_folder, tmp_path / "again")
    with pytest.raises(SlimformerError, match=MARKER_NAME):
        load_torch_int8(source)
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in int8_folder.iterdir():
        (broken / path.name).write_bytes(path.read_bytes())
    (broken / WEIGHTS_NAME).write_bytes(b"not safetensors")
    with pytest.raises(SlimformerError, match="not a readable safetensors"):
        load_torch_int8(broken)
    (broken / MARKER_NAME).write_text(json.dumps({"format": "other", "version": 9}))
    with pytest.raises(SlimformerError, match="names format 'other'"):
        load_torch_int8(broken)
