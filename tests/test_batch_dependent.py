"""Dynamic int8 scales a batch's activations together, so a text's logits depend on the texts
batched with it. Such variants are measured one text at a time, as they are timed and served
(real export, real ORTQuantizer, real ONNX Runtime sessions, real PyTorch dynamic int8)."""

from __future__ import annotations

import numpy as np
import pytest

from slimformer.compression.args import CompressArguments

SHORT = ["hi", "balance", "pay it", "rain?"]
# A long text with wild words widens the batch's activation range (and pads the short ones).
LONG = ["transfer four hundred dollars from checking to savings " * 6 + "zzqx %%% 9999 ###"]
TEXTS = SHORT + LONG


@pytest.fixture(scope="module")
def graphs(tmp_path_factory, tokenizer):
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    from .conftest import tiny_bert

    root = tmp_path_factory.mktemp("batch")
    # weights 10x the default spread: logits far enough apart to have answers, close enough
    # for int8's batch-wide rounding to change some (as on CLINC150's trained students)
    tiny_bert(initializer_range=0.2).save_pretrained(root / "m")
    tokenizer.save_pretrained(root / "m")
    asked = [chain_of(k, CompressArguments()) for k in ("onnx > int8", "onnx")]
    final = {c.key: root / f"m-{c.suffix}" for c in asked}
    return root / "m", run_chains(root / "m", asked, final, root / "scratch", PassContext())


def one_at_a_time(variant, texts):
    return np.concatenate([variant.predict_logits([t]) for t in texts])


@pytest.mark.parametrize("kind", ["onnx-lean", "onnx"])
def test_an_int8_graph_is_measured_one_text_at_a_time(graphs, kind):
    from slimformer.serving.registry import load_variant

    _, made = graphs
    int8 = load_variant(made["onnx > int8"], kind=kind)
    assert int8.batch_dependent
    batched = int8.predict_logits(TEXTS)
    single = one_at_a_time(int8, TEXTS)
    # the premise: in one batch the short texts' logits move with the long one
    assert not np.array_equal(batched[:len(SHORT)], single[:len(SHORT)])
    np.testing.assert_array_equal(int8.logits(TEXTS, batch_size=32), single)


@pytest.mark.parametrize("kind", ["onnx-lean", "onnx"])
def test_a_float_graph_keeps_its_batches(graphs, kind):
    from slimformer.serving.registry import load_variant

    _, made = graphs
    variant = load_variant(made["onnx"], kind=kind)
    assert not variant.batch_dependent
    np.testing.assert_allclose(variant.logits(TEXTS, batch_size=32), one_at_a_time(variant, TEXTS),
                               atol=1e-4)


def test_pytorch_dynamic_int8_is_batch_dependent_and_the_float_model_is_not(graphs):
    from slimformer.compression.torch_int8 import TorchInt8Variant
    from slimformer.serving.registry import load_variant

    source, _ = graphs
    model = load_variant(source, kind="pytorch")
    int8 = TorchInt8Variant.from_float(model, "int8")
    assert int8.batch_dependent and not model.batch_dependent
    np.testing.assert_array_equal(int8.logits(TEXTS, batch_size=32), one_at_a_time(int8, TEXTS))


def test_the_benchmark_scores_an_int8_graph_as_served(graphs, clinc):
    """measure_accuracy's answers for an int8 graph are its one-text answers, not those of
    batches of 32."""
    from datasets import ClassLabel, Dataset, Features, Value

    from slimformer.evaluation.benchmark import measure_accuracy
    from slimformer.serving.registry import load_variant

    _, made = graphs
    int8 = load_variant(made["onnx > int8"], kind="onnx-lean")
    texts = list(clinc["test"]["text"][:320])
    single = one_at_a_time(int8, texts).argmax(axis=-1)
    batched = np.concatenate([int8.predict_logits(texts[i:i + 32])
                              for i in range(0, len(texts), 32)]).argmax(axis=-1)
    assert (batched != single).any()  # the premise: batches of 32 answer some texts otherwise
    features = Features({"text": Value("string"), "intent": ClassLabel(names=int8.labels)})
    # labelled with the one-text answers: all right only when measured as served
    test = Dataset.from_dict({"text": texts, "intent": single.tolist()}, features=features)
    row = measure_accuracy(int8, test, batch_size=32, oos_label=None)
    assert row["accuracy"] == 1.0
