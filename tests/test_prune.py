"""Pruning: schedule, masks and their gradients, compaction, save/load, ONNX, the recipe."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from slimformer.compression.pruning.args import PruningArguments
from slimformer.compression.pruning.compact import (
    WIDTHS_KEY,
    compact,
    export_pruned_onnx,
    load_pruned,
    save_pruned,
)
from slimformer.compression.pruning.masks import Pruner, topk_mask
from slimformer.compression.pruning.report import layer_stats, sparsity_report
from slimformer.compression.pruning.schedule import cubic_schedule
from slimformer.errors import SlimformerError
from slimformer.models.architectures import encoder_layers

from .conftest import REPO, tiny_bert, tiny_distilbert

TEXTS = ["what is my checking balance", "wake me up at 7 tomorrow", "tell me a joke", "hi"]
MAKERS = {"bert": tiny_bert, "distilbert": tiny_distilbert}


def args(**kwargs) -> PruningArguments:
    defaults = {"attention_block": "8x8", "warmup_fraction": 0.0, "cooldown_fraction": 0.0}
    return PruningArguments(**{**defaults, **kwargs})


def batch(tokenizer) -> dict[str, torch.Tensor]:
    return dict(tokenizer(TEXTS, padding=True, return_tensors="pt", return_token_type_ids=False))


def masked_model(kind: str, method: str = "topk", sparsity: float = 0.5,
                 block: str = "head", seed: int = 1):
    """A tiny model with random scores and final masks, baked into its weights."""
    model = MAKERS[kind]()
    pruner = Pruner(model, args(pruning_method=method, final_sparsity=sparsity,
                                attention_block=block))
    torch.manual_seed(seed)
    with torch.no_grad():
        for group in pruner.groups.values():
            group.scores.normal_(0, 3)
    pruner.step(1, 1)
    pruner.bake()
    return model


# ---------------------------------------------------------------- schedule


def test_cubic_schedule_start_middle_end():
    kw = {"total_steps": 1000, "initial": 0.0, "final": 0.8, "warmup_steps": 100,
          "cooldown_steps": 300}
    assert cubic_schedule(0, **kw) == 0.0
    assert cubic_schedule(100, **kw) == 0.0  # t0: pruning starts here
    # halfway through the ramp (N*dt = 600): s_f + (s_i - s_f) * (1 - 0.5)^3
    assert cubic_schedule(400, **kw) == pytest.approx(0.8 - 0.8 * 0.125)
    assert cubic_schedule(700, **kw) == pytest.approx(0.8)
    assert cubic_schedule(1000, **kw) == pytest.approx(0.8)
    values = [cubic_schedule(t, **kw) for t in range(0, 1001, 50)]
    assert values == sorted(values)


def test_pruner_schedule_drives_threshold_and_lambda():
    pruner = Pruner(tiny_bert(), args(pruning_method="sigmoid", final_threshold=0.1,
                                      regularization_lambda=4.0))
    start = pruner.step(0, 100)
    assert (start.threshold, start.lam) == (0.0, 0.0)
    end = pruner.step(100, 100)
    assert end.threshold == pytest.approx(0.1) and end.lam == pytest.approx(4.0)


# ---------------------------------------------------------------- masks


@pytest.mark.parametrize("method,block", [("topk", "8x8"), ("topk", "head"),
                                          ("sigmoid", "8x16"), ("sigmoid", "head")])
def test_gradients_reach_scores_straight_through(tokenizer, method, block):
    model = tiny_bert().train()
    with torch.no_grad():  # trained models have non-zero biases; a masked FFN neuron's
        for module in model.modules():  # gradient flows through act(bias)
            if isinstance(module, torch.nn.Linear):
                module.bias.normal_()
    pruner = Pruner(model, args(pruning_method=method, final_sparsity=0.5,
                                attention_block=block))
    with torch.no_grad():
        for group in pruner.groups.values():
            group.scores.normal_()
            group.scores.view(-1)[::2] = -5.0  # half the blocks fall below any threshold
    pruner.step(1, 1)  # final masks: some blocks are off
    output = model(**batch(tokenizer), labels=torch.tensor([0, 1, 2, 42]))
    output.loss.backward()
    for name, group in pruner.groups.items():
        grad = group.scores.grad
        assert grad is not None, name
        off = group.hard_mask() == 0
        assert off.any(), name
        # straight-through: masked blocks get a gradient too (dL/dM = sum of dL/dW' * W)
        assert grad[off].abs().sum() > 0, name


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75])
def test_topk_reaches_target_sparsity(sparsity):
    model = tiny_bert()
    pruner = Pruner(model, args(pruning_method="topk", final_sparsity=sparsity))
    with torch.no_grad():
        for group in pruner.groups.values():
            group.scores.normal_()
    pruner.step(10, 10)
    for name, group in pruner.groups.items():
        assert float(1 - group.hard_mask().mean()) == pytest.approx(sparsity, abs=0.02), name
    weights = [m.weight for m in pruner.linears.values()]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(sparsity, abs=0.02)


def test_topk_keeps_the_highest_scores():
    scores = torch.tensor([[0.1, 5.0], [3.0, -1.0]])
    assert topk_mask(scores, 0.5).tolist() == [[0.0, 1.0], [1.0, 0.0]]


def test_sigmoid_mask_and_l1_regulariser():
    pruner = Pruner(tiny_bert(), args(pruning_method="sigmoid", final_threshold=0.3,
                                      regularization_lambda=2.0))
    with torch.no_grad():
        for group in pruner.groups.values():
            group.scores.normal_(0, 2)
    pruner.step(1, 1)
    group = next(iter(pruner.groups.values()))
    assert torch.equal(group.hard_mask(), (torch.sigmoid(group.scores) > 0.3).float())
    scores = torch.cat([g.scores.flatten() for g in pruner.groups.values()])
    assert float(pruner.regularization().detach()) == pytest.approx(
        2.0 * float(torch.sigmoid(scores).mean().detach()), rel=1e-5)
    pruner.regularization().backward()
    assert group.scores.grad is not None


def test_magnitude_masks_the_smallest_blocks():
    model = tiny_bert()
    query = encoder_layers(model)[0].attention.self.query
    with torch.no_grad():
        query.weight[:8] *= 100  # the first row of 8x8 blocks dominates
    pruner = Pruner(model, args(pruning_method="magnitude", final_sparsity=0.75,
                                prune_ffn=False))
    pruner.step(1, 1)
    mask = pruner.groups["encoder_layer_0_attention_self_query"].hard_mask()
    assert mask[0].sum() == 4 and mask.sum() == 4


def test_ffn_neuron_masks_row_and_column_together():
    model = tiny_bert()
    pruner = Pruner(model, args(pruning_method="topk", final_sparsity=0.5,
                                prune_attention=False))
    with torch.no_grad():
        for group in pruner.groups.values():
            group.scores.normal_()
    pruner.step(1, 1)
    layer = encoder_layers(model)[0]
    rows_off = ~layer.intermediate.dense.weight.any(dim=1)
    cols_off = ~layer.output.dense.weight.any(dim=0)
    assert rows_off.sum() == 32 and torch.equal(rows_off, cols_off)


# ---------------------------------------------------------------- compaction


@pytest.mark.parametrize("kind", ["bert", "distilbert"])
@pytest.mark.parametrize("method,block", [("topk", "head"), ("sigmoid", "8x8")])
def test_compaction_keeps_logits_and_shrinks(tokenizer, kind, method, block):
    model = masked_model(kind, method, 0.5, block)
    inputs = batch(tokenizer)
    with torch.no_grad():
        before = model(**inputs).logits
        params = sum(p.numel() for p in model.parameters())
        stats = layer_stats(model)
        compact(model)
        after = model(**inputs).logits
    assert torch.allclose(before, after, atol=1e-4)
    assert sum(p.numel() for p in model.parameters()) < params
    report = sparsity_report(stats, model, params)
    assert report["model_params_kept"] < report["model_params"]
    assert report["neurons_kept"] < report["neurons"]
    if block == "head":
        assert report["heads_kept"] == report["heads"] // 2
        assert model.config.pruned_heads


def test_compaction_folds_constant_heads_and_neurons(tokenizer):
    """A head with zero value rows, or a neuron with a zero input row, adds a constant."""
    model = tiny_bert()
    torch.manual_seed(3)
    layer = encoder_layers(model)[1]
    with torch.no_grad():
        for module in model.modules():  # non-zero biases, so the constants matter
            if isinstance(module, torch.nn.Linear):
                module.bias.normal_()
        layer.attention.self.value.weight[8:16] = 0  # head 1: constant value
        layer.intermediate.dense.weight[:10] = 0  # neurons 0-9: constant act(bias)
        inputs = batch(tokenizer)
        before = model(**inputs).logits
        compact(model)
        after = model(**inputs).logits
    assert torch.allclose(before, after, atol=1e-4)
    assert model.config.pruned_heads == {1: [1]}
    assert encoder_layers(model)[1].intermediate.dense.out_features == 54


def test_compaction_keeps_one_head_and_neuron_per_layer(tokenizer):
    model = tiny_bert()
    layer = encoder_layers(model)[0]
    with torch.no_grad():
        layer.attention.output.dense.weight.zero_()
        layer.output.dense.weight.zero_()
        before = model(**batch(tokenizer)).logits
        compact(model)
        after = model(**batch(tokenizer)).logits
    assert torch.allclose(before, after, atol=1e-4)
    assert len(model.config.pruned_heads[0]) == 3
    assert encoder_layers(model)[0].intermediate.dense.out_features == 1


def test_compaction_without_empty_heads_or_neurons_is_a_noop(tokenizer):
    model = tiny_bert()
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad():
        before = model(**batch(tokenizer)).logits
        compact(model)
        after = model(**batch(tokenizer)).logits
    assert torch.equal(before, after)
    assert sum(p.numel() for p in model.parameters()) == params
    assert not model.config.pruned_heads


def test_save_and_load_per_layer_widths(tmp_path, tokenizer):
    model = masked_model("bert", "sigmoid", block="8x8", seed=5)
    compact(model)
    widths = [layer.intermediate.dense.out_features for layer in encoder_layers(model)]
    assert len(set(widths)) > 1  # per-layer widths: from_pretrained cannot rebuild this
    save_pruned(model, tokenizer, tmp_path / "pruned")
    config = json.loads((tmp_path / "pruned" / "config.json").read_text())
    assert config[WIDTHS_KEY] == widths
    assert not list(tmp_path.glob("*.bin")) and (tmp_path / "pruned/model.safetensors").exists()
    loaded = load_pruned(tmp_path / "pruned")
    with torch.no_grad():
        assert torch.allclose(model(**batch(tokenizer)).logits,
                              loaded(**batch(tokenizer)).logits, atol=1e-6)

    from slimformer.serving.registry import load_variant

    variant = load_variant(f"pruned={tmp_path / 'pruned'}", threads=1)
    assert variant.kind == "pytorch-pruned"
    assert np.allclose(variant.predict_logits(TEXTS),
                       loaded(**batch(tokenizer)).logits.detach().numpy(), atol=1e-5)


def test_uniform_widths_load_with_from_pretrained(tmp_path, tokenizer):
    from transformers import AutoModelForSequenceClassification

    model = masked_model("distilbert", "topk", 0.5, "head")  # top-k: same width per layer
    compact(model)
    save_pruned(model, tokenizer, tmp_path / "pruned")
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "pruned").eval()
    with torch.no_grad():
        assert torch.allclose(model(**batch(tokenizer)).logits,
                              loaded(**batch(tokenizer)).logits, atol=1e-6)


def test_compacted_model_exports_to_onnx(tmp_path, tokenizer):
    from slimformer.compression.onnx.optimize import optimize_onnx
    from slimformer.compression.onnx.quantize import quantize_dynamic
    from slimformer.serving.ort import load_ort_model

    model = masked_model("bert", "sigmoid", block="8x8", seed=5)
    compact(model)
    with torch.no_grad():
        expected = model(**batch(tokenizer)).logits.numpy()
    export_pruned_onnx(model, tokenizer, tmp_path / "onnx")
    ort, ort_tokenizer = load_ort_model(tmp_path / "onnx")
    logits = ort(**ort_tokenizer(TEXTS, padding=True, return_tensors="np")).logits
    assert np.abs(np.asarray(logits) - expected).max() < 1e-4
    # the ONNX issue's graph optimization and int8 quantization take it as any export
    optimize_onnx(tmp_path / "onnx", tmp_path / "opt", level="O2")
    ort, _ = load_ort_model(tmp_path / "opt")
    logits = ort(**ort_tokenizer(TEXTS, padding=True, return_tensors="np")).logits
    assert np.abs(np.asarray(logits) - expected).max() < 1e-4
    quantize_dynamic(tmp_path / "opt", tmp_path / "int8")
    ort, _ = load_ort_model(tmp_path / "int8")
    logits = ort(**ort_tokenizer(TEXTS, padding=True, return_tensors="np")).logits
    assert np.asarray(logits).shape == expected.shape
    assert np.abs(np.asarray(logits) - expected).max() < 0.05


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad,message", [
    ({"final_sparsity": 1.0}, "final_sparsity must be in [0, 1)"),
    ({"final_sparsity": -0.1}, "final_sparsity must be in [0, 1)"),
    ({"pruning_method": "l0"}, "unknown pruning_method 'l0'"),
    ({"attention_block": "32"}, "attention_block must be ROWSxCOLS"),
    ({"final_threshold": 1.5}, "final_threshold must be in (0, 1)"),
])
def test_bad_settings(bad, message):
    with pytest.raises(SlimformerError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        args(**bad)


def test_block_that_does_not_divide_the_weight():
    with pytest.raises(SlimformerError, match=r"block size 5x8 does not divide the weight of "
                       r"encoder.layer.0.attention.self.query \(32x32\)"):
        Pruner(tiny_bert(), args(attention_block="5x8"))


def test_unknown_architecture():
    from transformers import GPT2Config, GPT2ForSequenceClassification

    model = GPT2ForSequenceClassification(GPT2Config(n_layer=1, n_embd=16, n_head=2,
                                                     vocab_size=100, num_labels=3))
    with pytest.raises(SlimformerError, match=r"layout \(layers, attention heads, FFN\) of "
                                              "model type 'gpt2'; supported: bert, "):
        Pruner(model, args())
    with pytest.raises(SlimformerError, match="layout .* of model type 'gpt2'"):
        compact(model)


# ---------------------------------------------------------------- training


def tiny_dataset(tokenizer, n: int = 16):
    from datasets import Dataset

    texts = [TEXTS[i % len(TEXTS)] + f" {i}" for i in range(n)]
    encoded = tokenizer(texts, truncation=True)
    return Dataset.from_dict({**encoded, "labels": [i % 5 for i in range(n)]})


def pruning_trainer(tmp_path, tokenizer, model, pruner, **kwargs):
    from transformers import DataCollatorWithPadding

    from slimformer.compression.pruning.trainer import PruningTrainer
    from slimformer.training.args import DistillationTrainingArguments

    training_args = DistillationTrainingArguments(
        output_dir=str(tmp_path / "run"), per_device_train_batch_size=4, max_steps=8,
        learning_rate=1e-3, logging_steps=2, save_strategy="no", report_to="none",
        use_cpu=True, alpha=kwargs.pop("alpha", 1.0))
    return PruningTrainer(model=model, args=training_args, train_dataset=tiny_dataset(tokenizer),
                          data_collator=DataCollatorWithPadding(tokenizer), pruner=pruner,
                          **kwargs)


def test_trainer_moves_schedule_and_learns_scores(tmp_path, tokenizer):
    model = tiny_bert()
    pruner = Pruner(model, args(pruning_method="sigmoid", final_threshold=0.1,
                                regularization_lambda=5.0, scores_learning_rate=0.1))
    trainer = pruning_trainer(tmp_path, tokenizer, model, pruner)
    trainer.train()
    assert pruner.state.threshold > 0.05 and pruner.state.lam > 2.5
    scores = torch.cat([g.scores.flatten() for g in pruner.groups.values()])
    assert float(scores.mean().detach()) < -0.1  # the L1 term pushes every score down
    logged = [h for h in trainer.state.log_history if "prune_mask_density" in h]
    assert logged and logged[-1]["prune_lambda"] > 0


def test_trainer_distils_from_a_teacher(tmp_path, tokenizer, monkeypatch):
    import slimformer.training.distill as distill

    calls = []
    real = distill.distillation_loss

    def spy(student, teacher, labels, alpha, temperature, *labelled):
        calls.append(teacher is not None)
        return real(student, teacher, labels, alpha, temperature, *labelled)

    monkeypatch.setattr(distill, "distillation_loss", spy)
    model = tiny_bert()
    pruner = Pruner(model, args(pruning_method="topk", final_sparsity=0.5))
    trainer = pruning_trainer(tmp_path, tokenizer, model, pruner,
                              teacher_model=tiny_bert(), alpha=0.5)
    trainer.train()
    assert calls and all(calls)
    assert pruner.mask_density() == pytest.approx(0.5, abs=0.02)


# ---------------------------------------------------------------- recipe


def load_recipe():
    from slimformer.cli.commands import prune

    return prune


def test_prune_recipe_end_to_end(tmp_path, clinc_dir, tiny_bert_folder):
    recipe = load_recipe()
    out = tmp_path / "pruned"
    recipe.main([
        "--config", str(REPO / "recipes/prune_minilm_hybrid_offline.yaml"),
        "--model_name_or_path", str(tiny_bert_folder),
        "--teacher_model_name_or_path", str(tiny_bert_folder),
        "--data_file", str(clinc_dir / "data_oos_plus.json"), "--max_samples", "32",
        "--pruning_method", "topk", "--attention_block", "head", "--final_sparsity", "0.5",
        "--max_steps", "6", "--per_device_train_batch_size", "8",
        "--output_dir", str(out), "--onnx_dir", str(tmp_path / "onnx"),
        "--cache_dir", str(tmp_path / "cache"),
    ])
    for name in ("model.safetensors", "config.json", "tokenizer.json", "sparsity.json",
                 "sparsity.md", "schedule.png", "metrics.json", "slimformer.json"):
        assert (out / name).is_file(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cache", "onnx", "onnx-int8", "pruned", "tiny-bert"]  # no scratch folder left
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["compaction_max_logit_diff"] < 1e-4 and "test_accuracy" in metrics
    assert json.loads((out / "slimformer.json").read_text())["steps"][-1]["step"] == "prune"
    report = json.loads((out / "sparsity.json").read_text())
    assert report["neurons_kept"] == report["neurons"] // 2
    assert report["heads_kept"] == report["heads"] // 2
    assert (tmp_path / "onnx-int8" / "model.onnx").is_file()
    load_pruned(out)


def test_prune_recipe_rejects_bad_input(tmp_path, capsys):
    from slimformer.errors import run_recipe

    recipe = load_recipe()
    with pytest.raises(SystemExit):
        run_recipe(recipe.main, ["--final_sparsity", "1.2", "--output_dir", str(tmp_path)])
    assert "final_sparsity must be in [0, 1), got 1.2" in capsys.readouterr().err


def test_pruned_heads_keep_the_attention_fused(tmp_path, tokenizer):
    """Whole heads removed, the same number per layer: ORT's optimizer detects the pruned
    geometry from the graph and still fuses one Attention per layer (then QAttention)."""
    from slimformer.compression.onnx.optimize import optimize_onnx
    from slimformer.compression.onnx.quantize import quantize_dynamic
    from slimformer.models.onnx_files import op_counts

    model = masked_model("bert", "topk", sparsity=0.5, block="head", seed=2)
    compact(model)
    heads = [layer.attention.self.num_attention_heads for layer in model.bert.encoder.layer]
    assert heads == [2, 2]  # 4 heads each before
    export_pruned_onnx(model, tokenizer, tmp_path / "onnx")
    fused = optimize_onnx(tmp_path / "onnx", tmp_path / "opt", level="O2")
    assert fused["Attention"] == len(heads)
    quantize_dynamic(tmp_path / "opt", tmp_path / "int8")
    assert op_counts(tmp_path / "int8" / "model.onnx").get("QAttention") == len(heads)
