"""The out-of-scope fallback: fitted on validation only, bounded in-scope cost, stored with the
model, applied the same way by every variant kind."""

from __future__ import annotations

import json

import numpy as np
import pytest

from slimformer.errors import SlimformerError
from slimformer.serving.fallback import (
    CONFIG_KEY,
    FallbackRule,
    confidence,
    fit_rule,
    read_rule,
    store_rule,
)

OOS = 2


def synthetic(rows: int, oos_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Logits of 4 labels (id 2 = oos): in-scope rows confident, out-of-scope ones less so."""
    rng = np.random.default_rng(seed)
    labels = np.where(rng.random(rows) < oos_share, OOS, rng.choice([0, 1, 3], rows))
    logits = rng.normal(0, 1, (rows, 4))
    strength = np.where(labels == OOS, rng.normal(1.0, 1.0, rows), rng.normal(4.0, 1.5, rows))
    logits[np.arange(rows), np.where(labels == OOS, rng.choice([0, 1, 3], rows), labels)] += \
        strength
    return logits, labels


def test_the_in_scope_cost_is_bounded_and_the_threshold_is_the_highest_within_it():
    logits, labels = synthetic(3000, 0.03, 0)
    rule = fit_rule(logits, labels, OOS, max_in_scope_drop=0.5)
    without, with_ = rule.figures["without"], rule.figures["with"]
    drop = 100 * (without["in_scope_accuracy"] - with_["in_scope_accuracy"])
    assert 0 < drop <= 0.5
    assert with_["oos_recall"] > without["oos_recall"]
    higher = FallbackRule(**{**rule.to_dict(), "threshold": rule.threshold + 1e-6})
    ins = labels != OOS
    right = (higher.predict_ids(logits)[ins] == labels[ins]).mean()
    assert 100 * (without["in_scope_accuracy"] - right) > 0.5  # one step higher costs more


def test_the_rule_does_not_depend_on_the_share_of_out_of_scope_rows():
    logits, labels = synthetic(3000, 0.03, 0)
    rule = fit_rule(logits, labels, OOS)
    extra_logits, extra_labels = synthetic(3000, 0.5, 1)
    more_oos = extra_labels == OOS
    mixed = fit_rule(np.concatenate([logits, extra_logits[more_oos]]),
                     np.concatenate([labels, extra_labels[more_oos]]), OOS)
    assert mixed.threshold == rule.threshold  # only in-scope rows set it


@pytest.mark.parametrize("score", ["max_logit", "max_softmax"])
def test_confidence_ignores_the_oos_column(score):
    logits = np.array([[1.0, 2.0, 9.0, 0.0]])
    assert confidence(logits, score, OOS)[0] == pytest.approx(
        2.0 if score == "max_logit" else np.exp(2) / np.exp(logits).sum())
    rule = FallbackRule(threshold=-100.0, oos_id=OOS, score=score)
    assert rule.predict_ids(logits)[0] == OOS  # the model's own oos answer stays


def test_store_and_read_back(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert read_rule(tmp_path) is None
    logits, labels = synthetic(500, 0.1, 2)
    rule = fit_rule(logits, labels, OOS)
    store_rule(tmp_path, rule)
    assert read_rule(tmp_path) == rule
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "bert"
    store_rule(tmp_path, None)
    assert CONFIG_KEY not in json.loads((tmp_path / "config.json").read_text())


def test_a_malformed_rule_is_one_line(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({CONFIG_KEY: {"threshold": 1.0}}))
    with pytest.raises(SlimformerError, match="malformed oos_fallback") as caught:
        read_rule(tmp_path)
    assert "\n" not in str(caught.value)
    with pytest.raises(SlimformerError, match="unknown fallback score"):
        fit_rule(np.zeros((3, 4)), np.zeros(3, int), OOS, score="entropy")


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tokenizer, clinc):
    """A tiny classifier, its ONNX export and int8 variant, each with its own fitted rule."""
    from slimformer.compression.onnx.export import export_onnx
    from slimformer.compression.onnx.quantize import quantize_dynamic
    from slimformer.data.args import DataArguments
    from slimformer.serving.fit_fallback import fit_and_store

    from .conftest import tiny_bert

    root = tmp_path_factory.mktemp("fallback")
    model = tiny_bert(initializer_range=0.5)
    model.save_pretrained(root / "torch")
    tokenizer.save_pretrained(root / "torch")
    export_onnx(root / "torch", root / "onnx")
    quantize_dynamic(root / "onnx", root / "int8", "auto", True)
    validation = clinc["validation"].shuffle(seed=0).select(range(300))
    data_args = DataArguments(max_in_scope_drop=20.0)  # a tiny model: let the rule bite
    rules = {name: fit_and_store(root / name, kind, validation, data_args)
             for name, kind in (("torch", None), ("onnx", "onnx-lean"), ("int8", "onnx-lean"))}
    return root, rules


@pytest.mark.parametrize(("folder", "kind"), [("torch", "pytorch"), ("onnx", "onnx"),
                                              ("onnx", "onnx-lean"), ("onnx", "onnx-pipeline"),
                                              ("int8", "onnx-lean")])
def test_every_variant_kind_applies_the_stored_rule(exported, clinc, folder, kind):
    from slimformer.serving.registry import load_variant

    root, rules = exported
    variant = load_variant(f"v={root / folder}@{kind}")
    assert variant.fallback == rules[folder] == read_rule(root / folder)
    texts = clinc["test"].shuffle(seed=3).select(range(120))["text"][:]
    logits = variant.predict_logits(texts)
    answers = variant.predict(texts, return_scores=True)
    expected = rules[folder].predict_ids(logits)
    assert [a["label"] for a in answers] == [variant.labels[i] for i in expected]
    fallbacks = [a["fallback"] for a in answers]
    assert any(fallbacks) and not all(fallbacks)  # the rule bites on some texts only
    assert all(a["label"] == "oos" for a in answers if a["fallback"])
    assert variant.predict(texts) == [a["label"] for a in answers]


def test_onnx_kinds_of_one_folder_agree(exported, clinc):
    from slimformer.serving.registry import load_variant

    root, _ = exported
    texts = clinc["test"].shuffle(seed=4).select(range(60))["text"][:]
    answers = {kind: load_variant(f"v={root / 'onnx'}@{kind}").predict(texts)
               for kind in ("onnx", "onnx-lean")}
    assert answers["onnx"] == answers["onnx-lean"]


def test_the_benchmark_fits_on_validation_only(exported, clinc, tokenizer):
    """A variant with no stored rule gets one fitted on validation; changing the test rows
    cannot change it."""
    from slimformer.evaluation.benchmark import measure_accuracy
    from slimformer.serving.torch import TransformersVariant

    from .conftest import tiny_bert

    validation = clinc["validation"].shuffle(seed=0).select(range(200))
    variant = TransformersVariant(tiny_bert(initializer_range=0.5), tokenizer, "plain")
    assert variant.fallback is None
    first = measure_accuracy(variant, clinc["test"].select(range(64)), 32, "oos", validation)
    second = measure_accuracy(variant, clinc["test"].select(range(64, 200)), 32, "oos",
                              validation)
    assert first["fallback"]["threshold"] == second["fallback"]["threshold"]
    assert first["fallback"]["source"] == "fitted by the benchmark on validation"
    assert first["validation"]["with_fallback"] == second["validation"]["with_fallback"]
    assert "with_fallback" in first and first["with_fallback"] != second["with_fallback"]


def test_rows_in_another_order_are_paired_with_their_own_labels():
    """Trainer.predict may return rows in a length-grouped order: the rule is fitted on the
    labels that come with the logits, not on the split's own order."""
    from datasets import ClassLabel, Dataset, Features, Value

    from slimformer.data.args import DataArguments
    from slimformer.serving.fallback import rule_for_split

    logits, labels = synthetic(400, 0.1, 5)
    split = Dataset.from_dict({"text": ["x"] * 400, "intent": labels.tolist()},
                              features=Features({"text": Value("string"), "intent": ClassLabel(
                                  names=["a", "b", "oos", "c"])}))
    order = np.random.default_rng(0).permutation(400)
    data_args = DataArguments()
    right = rule_for_split(logits, split, data_args)
    shuffled = rule_for_split(logits[order], split, data_args, labels=labels[order])
    assert shuffled.threshold == right.threshold and shuffled.figures == right.figures
    wrong = rule_for_split(logits[order], split, data_args)  # logits and labels mismatched
    assert wrong.figures["without"]["accuracy"] < 0.5 < right.figures["without"]["accuracy"]


def test_the_benchmark_fits_with_the_given_fallback_settings(clinc, tokenizer):
    from slimformer.data.args import DataArguments
    from slimformer.evaluation.benchmark import measure_accuracy
    from slimformer.serving.torch import TransformersVariant

    from .conftest import tiny_bert

    validation = clinc["validation"].shuffle(seed=0).select(range(200))
    variant = TransformersVariant(tiny_bert(initializer_range=0.5), tokenizer, "plain")
    row = measure_accuracy(variant, clinc["test"].select(range(64)), 32, "oos", validation,
                           DataArguments(fallback_score="max_softmax", max_in_scope_drop=5.0))
    assert row["fallback"]["score"] == "max_softmax"
    assert row["fallback"]["max_in_scope_drop"] == 5.0


def test_energy_and_temperature_scores_are_the_formulas():
    logits = np.array([[1.0, 2.0, 9.0, 0.0], [0.5, -1.0, 0.0, 3.0]])
    in_scope = logits[:, [0, 1, 3]]
    energy = np.log(np.exp(in_scope).sum(axis=1))
    np.testing.assert_allclose(confidence(logits, "energy", OOS), energy)
    scaled = np.exp(logits / 2.5) / np.exp(logits / 2.5).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(confidence(logits, "temperature_softmax", OOS, 2.5),
                               scaled[:, [0, 1, 3]].max(axis=1))


def test_temperature_scaling_fits_a_temperature_on_in_scope_rows():
    from slimformer.serving.fallback import fit_temperature

    logits, labels = synthetic(2000, 0.1, 6)
    rule = fit_rule(logits, labels, OOS, score="temperature_softmax")
    ins = labels != OOS
    assert rule.temperature == fit_temperature(logits[ins], labels[ins])
    assert rule.temperature != 1.0
    # overconfident logits (x4) need a temperature about four times higher
    sharper = fit_rule(4 * logits, labels, OOS, score="temperature_softmax")
    assert sharper.temperature == pytest.approx(4 * rule.temperature, rel=0.15)


def test_auto_keeps_the_score_that_answers_validation_best():
    logits, labels = synthetic(3000, 0.2, 7)
    rule = fit_rule(logits, labels, OOS, score="auto")
    assert set(rule.compared) == {"max_logit", "max_softmax", "temperature_softmax", "energy",
                                  "mahalanobis"}
    best = max(v["accuracy"] for v in rule.compared.values())
    assert rule.figures["with"]["accuracy"] == best == rule.compared[rule.score]["accuracy"]
    for score in rule.compared:
        assert fit_rule(logits, labels, OOS, score=score).figures["with"] == \
            rule.compared[score]
    assert FallbackRule.from_dict(json.loads(json.dumps(rule.to_dict()))) == rule


@pytest.mark.parametrize("score", ["max_softmax", "temperature_softmax", "energy", "mahalanobis"])
def test_every_variant_kind_applies_each_stored_score(exported, clinc, score):
    from slimformer.data.args import DataArguments
    from slimformer.serving.fallback import rule_for_split
    from slimformer.serving.registry import load_variant

    root, rules = exported
    validation = clinc["validation"].shuffle(seed=0).select(range(300))
    texts = clinc["test"].shuffle(seed=3).select(range(120))["text"][:]
    data_args = DataArguments(max_in_scope_drop=20.0, fallback_score=score)
    try:
        for folder, kinds in (("torch", ["pytorch"]), ("onnx", ["onnx", "onnx-lean"]),
                              ("int8", ["onnx-lean"])):
            logits = load_variant(f"v={root / folder}@{kinds[0]}").logits(validation["text"])
            rule = rule_for_split(logits, validation, data_args)
            assert rule.score == score
            store_rule(root / folder, rule)
            for kind in kinds:
                variant = load_variant(f"v={root / folder}@{kind}")
                assert variant.fallback == rule
                expected = rule.predict_ids(variant.predict_logits(texts))
                answers = variant.predict(texts, return_scores=True)
                assert [a["label"] for a in answers] == [variant.labels[i] for i in expected]
                assert any(a["fallback"] for a in answers)
    finally:
        for folder, rule in rules.items():
            store_rule(root / folder, rule)


def test_the_auto_rule_is_fitted_without_test(clinc, tokenizer):
    from slimformer.data.args import DataArguments
    from slimformer.evaluation.benchmark import measure_accuracy
    from slimformer.serving.torch import TransformersVariant

    from .conftest import tiny_bert

    validation = clinc["validation"].shuffle(seed=0).select(range(200))
    variant = TransformersVariant(tiny_bert(initializer_range=0.5), tokenizer, "plain")
    data_args = DataArguments(fallback_score="auto", max_in_scope_drop=5.0)
    first = measure_accuracy(variant, clinc["test"].select(range(64)), 32, "oos", validation,
                             data_args)
    second = measure_accuracy(variant, clinc["test"].select(range(64, 200)), 32, "oos",
                              validation, data_args)
    for key in ("threshold", "score", "temperature", "compared", "centroids"):
        assert first["fallback"][key] == second["fallback"][key]
    assert len(first["fallback"]["compared"]) == 5
