"""Every supported encoder through the whole chain on a tiny random model of its kind, with a
real tokenizer of its kind: fine-tune -> layer-subset student -> ONNX -> fused ONNX -> int8
-> prune + compact -> benchmark -> cards, then every exported folder through pipeline() and
every card's own snippet against its repository folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slimformer.errors import SlimformerError
from slimformer.models.architectures import ARCHITECTURES as REGISTRY

from .test_any_data import INTENTS, data_args, intents_folder
from .test_card import usage_snippet
from .tiny_models import ARCHITECTURES, tiny_folder

STUDENT = "0 2"  # of a 3-layer teacher: a valid ModernBERT student too (layer 0 first)


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory, clinc) -> Path:
    return intents_folder(tmp_path_factory.mktemp("intents-small"), clinc, 12, 6)


def optimize_arguments(base: Path, out: Path, prune: bool):
    from slimformer.evaluation.settings import BenchmarkSettings
    from slimformer.optimize.args import OptimizeArguments

    args = OptimizeArguments(base_model=str(base), students=[STUDENT],
                             variants=["onnx-int8"], output_dir=str(out),
                             max_accuracy_drop=100.0, namespace="alice", finetune_epochs=1.0,
                             distill_epochs=1.0, prune_epochs=1.0,
                             prune_levels=[0.5] if prune else [])
    settings = BenchmarkSettings(threads=1, latency_queries=4, warmup_queries=1, rounds=3,
                                 batch_size=16, throughput_batches=1, measure_memory=False)
    return args, settings


def test_every_listed_architecture_is_registered():
    assert set(ARCHITECTURES) | {"modernbert"} <= set(REGISTRY)


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_the_whole_chain(tmp_path, model_type, small_csv):
    from optimum.onnxruntime import ORTModelForSequenceClassification
    from transformers import AutoTokenizer, pipeline

    from slimformer.compression.onnx.export import export_onnx
    from slimformer.compression.onnx.optimize import optimize_onnx
    from slimformer.compression.onnx.quantize import quantize_dynamic
    from slimformer.models.onnx_files import op_counts
    from slimformer.optimize.run import optimize

    arch = REGISTRY[model_type]
    base = tiny_folder(tmp_path / "base", model_type, list(INTENTS), layers=3)
    run = tmp_path / "run"
    prune = not arch.no_pruning
    args, settings = optimize_arguments(base, run, prune)
    optimize(args, data_args(small_csv, max_length=16), settings)

    teacher = json.loads((run / "teacher" / "config.json").read_text())
    assert list(teacher["id2label"].values()) == sorted(INTENTS)  # the data's labels
    student = run / "student-2l-0-2"
    config = json.loads((student / "config.json").read_text())
    assert config["model_type"] == model_type
    assert config["n_layers" if model_type == "distilbert" else "num_hidden_layers"] == 2
    report = json.loads((run / "benchmark" / "report.json").read_text())
    rows = {r["name"]: r for r in report["variants"]}
    assert report["data"]["name"] == small_csv.name and report["data"]["labels"] == 4
    assert report["test_rows"] == 24
    assert {"teacher", "student-2l-0-2", "student-2l-0-2-onnx-int8"} <= set(rows)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows.values())

    # ORT's optimizer fuses Attention in every layer where it supports the attention, and
    # int8 then quantizes it; elsewhere it still fuses the layer norms.
    export_onnx(student, tmp_path / "onnx")
    fused = optimize_onnx(tmp_path / "onnx", tmp_path / "opt", level="O2")
    assert fused.get("Attention", 0) == (2 if arch.fuses_attention else 0), fused
    assert fused.get("SkipLayerNormalization", 0) >= 2, fused
    quantize_dynamic(tmp_path / "opt", tmp_path / "opt-int8")
    assert op_counts(tmp_path / "opt-int8" / "model.onnx").get("QAttention", 0) == (
        2 if arch.fuses_attention else 0)

    if prune:
        pruned = run / "student-2l-0-2-pruned-50"
        sparsity = json.loads((pruned / "sparsity.json").read_text())
        assert sparsity["neurons_kept"] == sparsity["neurons"] // 2
        kept_heads = sparsity["heads"] if arch.no_head_removal else sparsity["heads"] // 2
        assert sparsity["heads_kept"] == kept_heads
        # equal FFN widths per layer: a plain config loads it (kind pytorch), else per layer
        assert rows["student-2l-0-2-pruned-50"]["kind"] in {"pytorch", "pytorch-pruned"}
        assert rows["student-2l-0-2-pruned-50-onnx-int8"]["kind"] == "onnx-lean"
        # the teacher is pruned too, distilled from itself
        teacher_sparsity = json.loads((run / "teacher-pruned-50" / "sparsity.json").read_text())
        assert teacher_sparsity["neurons_kept"] == teacher_sparsity["neurons"] // 2
        assert rows["teacher-pruned-50-onnx-int8"]["kind"] == "onnx-lean"

    # Every ONNX folder loads through pipeline() with ORTModelForSequenceClassification.
    onnx_folders = [p.parent for p in (run / "variants").rglob("model.onnx")]
    onnx_folders += [tmp_path / "opt", tmp_path / "opt-int8"]
    assert len(onnx_folders) >= 4
    for folder in onnx_folders:
        classify = pipeline("text-classification", tokenizer=AutoTokenizer.from_pretrained(folder),
                            model=ORTModelForSequenceClassification.from_pretrained(folder))
        assert classify("what is my balance")[0]["label"] in INTENTS, folder

    # Every card's snippet runs against its own repository folder.
    repos = [p.parent for p in (run / "hub" / "alice").glob("*/README.md")]
    assert len(repos) == len(rows)
    for repo in repos:
        card = repo.joinpath("README.md").read_text()
        assert f"a text classifier trained on {small_csv.name}" in card
        assert "CLINC150" not in card and "clinc_oos" not in card
        assert "label `oos`" in card.lower()  # the data's out-of-scope label and fallback
        snippet = usage_snippet(card)
        repo_id = re.search(r'"(alice/[^"]+)"', snippet).group(1)
        namespace: dict = {}
        exec(snippet.replace(repo_id, str(repo)), namespace)  # noqa: S102
        assert namespace["prediction"][0]["label"] in INTENTS, repo


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_pytorch_int8_saves_and_loads_for_every_architecture(tmp_path, model_type):
    """slimformer's PyTorch int8 format (the card's `from slimformer import load_torch_int8`)
    for each encoder: every Linear int8, the logits of the model it saved, pipeline() runs."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    from slimformer import load_torch_int8, quantize_torch_folder
    from slimformer.compression.torch_int8 import quantize_model

    source = tiny_folder(tmp_path / "model", model_type, list(INTENTS))
    quantize_torch_folder(source, tmp_path / "int8")
    model = load_torch_int8(tmp_path / "int8")
    assert not [n for n, m in model.named_modules() if type(m) is torch.nn.Linear]
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "int8")
    batch = tokenizer(["what is my balance", "when is my bill due"], return_tensors="pt",
                      padding=True)
    float_model = AutoModelForSequenceClassification.from_pretrained(source).eval()
    with torch.inference_mode():
        loaded = model(**batch).logits
        torch.testing.assert_close(loaded, quantize_model(float_model)(**batch).logits,
                                   atol=1e-6, rtol=0)  # saved and rebuilt exactly
        assert loaded.abs().max() > 0
    classify = pipeline("text-classification", model=model, tokenizer=tokenizer)
    assert classify("what is my balance")[0]["label"] in INTENTS


def test_an_unknown_architecture_fails_before_training(tmp_path, small_csv):
    from transformers import GPT2Config, GPT2ForSequenceClassification

    from slimformer.optimize.run import optimize

    base = tmp_path / "gpt2"
    GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=100,
                                             num_labels=4)).save_pretrained(base)
    args, settings = optimize_arguments(base, tmp_path / "run", prune=False)
    with pytest.raises(SlimformerError, match=r"does not know the encoder layout .* model type "
                                              "'gpt2'; supported: bert, camembert"):
        optimize(args, data_args(small_csv, max_length=16), settings)
    assert not (tmp_path / "run" / "teacher").exists()  # nothing trained


def test_modernbert_pruning_and_bad_students_fail_before_training(tmp_path, small_csv):
    from slimformer.optimize.run import optimize

    base = tiny_folder(tmp_path / "base", "modernbert", list(INTENTS), layers=3)
    args, settings = optimize_arguments(base, tmp_path / "run", prune=True)
    with pytest.raises(SlimformerError, match="pruning does not support model type "
                                              "'modernbert': ModernBERT fuses q, k and v"):
        optimize(args, data_args(small_csv, max_length=16), settings)
    args, settings = optimize_arguments(base, tmp_path / "run2", prune=False)
    args.trim_vocab = True  # ModernBERT's tokenizer is byte-level BPE
    with pytest.raises(SlimformerError, match="trim-vocab supports WordPiece .* this one is "
                                              "'BPE'"):
        optimize(args, data_args(small_csv, max_length=16), settings)
    args.trim_vocab = False
    args.students = ["1 2"]
    with pytest.raises(SlimformerError, match=r"ModernBERT student layers \[1, 2\] cannot be "
                                              "reloaded"):
        optimize(args, data_args(small_csv, max_length=16), settings)
    assert not (tmp_path / "run" / "teacher").exists()  # nothing trained
    assert not (tmp_path / "run2" / "teacher").exists()


@pytest.mark.parametrize("model_type", ["mpnet", "deberta-v2"])
def test_head_pruning_where_heads_cannot_go_names_the_fix(tmp_path, model_type, small_csv):
    from slimformer.compression.pruning.args import PruningArguments
    from slimformer.compression.pruning.masks import Pruner
    from slimformer.models.loading import load_classifier_folder

    model = load_classifier_folder(tiny_folder(tmp_path / "m", model_type, list(INTENTS)))
    with pytest.raises(SlimformerError, match="--prune_attention false"):
        Pruner(model, PruningArguments(pruning_method="topk", attention_block="head"))
    Pruner(model, PruningArguments(pruning_method="topk", prune_attention=False))  # FFN only
