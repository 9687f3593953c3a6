"""The cls pass (compression/onnx/cls_tail.py): the encoder's tail narrowed to position 0.
Real exports of tiny models, real ORTOptimizer fusion, real ONNX Runtime sessions."""

from __future__ import annotations

import numpy as np
import pytest

from slimformer.compression.args import CompressArguments
from slimformer.errors import SlimformerError

from .tiny_models import ARCHITECTURES, tiny_folder

# different lengths, so a batch carries padding
TEXTS = ["what is my balance", "transfer one hundred dollars from checking to my savings "
         "account tomorrow morning please", "rain?", "book a table for two at the italian place",
         "how do i say hello in french", "set an alarm"]

CHAINS = ("onnx", "onnx > cls", "onnx > O2", "onnx > O2 > cls", "onnx > O2 > cls > int8",
          "onnx > O2 > int8")


def make_chains(root, model, tokenizer):
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    asked = [chain_of(k, CompressArguments()) for k in CHAINS]
    final = {c.key: root / f"model-{c.suffix}" for c in asked}
    return run_chains(root / "model", asked, final, root / "scratch", PassContext())


@pytest.fixture(scope="module")
def bert(tmp_path_factory, tokenizer):
    from .conftest import tiny_bert

    return make_chains(tmp_path_factory.mktemp("cls-bert"), tiny_bert(num_hidden_layers=3),
                       tokenizer)


def logits(folder, texts=TEXTS):
    from slimformer.serving.lean import LeanOnnxVariant

    return LeanOnnxVariant.load(folder, "x", threads=1).predict_logits(texts)


def assert_int8_alike(got, want) -> None:
    """Two int8 graphs of one model (activation ranges taken over different tensors): most
    answers the same, the logits close."""
    assert (got.argmax(1) == want.argmax(1)).mean() >= 5 / 6
    np.testing.assert_allclose(got, want, atol=0.05)


def last_hidden_rows(folder) -> dict[str, int]:
    """Axis 1 of every MatMul's output, on a batch of queries, by running the graph with each
    MatMul output exposed (the sizes the session really computed)."""
    import onnx
    import onnxruntime as ort

    from slimformer.serving.lean import LeanOnnxVariant

    model = onnx.load(str(folder / "model.onnx"))
    names = [n.output[0] for n in model.graph.node if n.op_type == "MatMul"]
    model.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = LeanOnnxVariant.load(folder, "x", threads=1).encode(TEXTS)
    outputs = session.run(names, feed)
    return {name: out.shape[1] for name, out in zip(names, outputs) if out.ndim == 3}


@pytest.mark.parametrize("narrowed, whole", [("onnx > cls", "onnx"),
                                              ("onnx > O2 > cls", "onnx > O2")])
def test_narrowed_tail_gives_the_same_logits(bert, narrowed, whole):
    """Exact up to float rounding: the same products on fewer rows. One query at a time and a
    padded batch both."""
    np.testing.assert_allclose(logits(bert[narrowed]), logits(bert[whole]), atol=1e-5)
    for text in TEXTS[:3]:
        np.testing.assert_allclose(logits(bert[narrowed], [text]), logits(bert[whole], [text]),
                                   atol=1e-5)


@pytest.mark.parametrize("chain", ["onnx > cls", "onnx > O2 > cls"])
def test_the_last_layers_products_run_on_one_row(bert, chain):
    """Of a 3-layer model's MatMuls on the hidden states, the last layer's attention output
    projection and both feed-forward products see one position; the first two layers' see the
    whole query."""
    from slimformer.provenance import read_provenance

    narrowed = last_hidden_rows(bert[chain])
    whole = last_hidden_rows(bert[chain.replace(" > cls", "")])
    longest = max(whole.values())
    assert longest > 1
    assert sorted(narrowed.values()).count(1) == 3
    assert sum(rows == longest for rows in narrowed.values()) == len(narrowed) - 3
    record = read_provenance(bert[chain])["steps"][-1]
    assert record["step"] == "onnx-cls-tail"
    assert record["settings"]["matmuls"] == 3 and record["settings"]["position"] == 0
    # the residual stream and the last attention's output enter the tail, nothing else
    assert len(record["settings"]["sliced"]) == 2


def test_int8_after_cls_keeps_the_answers(bert):
    """int8 quantizes the narrowed tail (its activations with position 0's own range): the
    predictions agree with the whole graph's int8."""
    from slimformer.models.onnx_files import op_counts

    counts = op_counts(bert["onnx > O2 > cls > int8"] / "model.onnx")
    assert counts.get("MatMulInteger", 0) + counts.get("QAttention", 0) > 0
    assert counts.get("Slice", 0) >= 2
    assert_int8_alike(logits(bert["onnx > O2 > cls > int8"]), logits(bert["onnx > O2 > int8"]))


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_every_architecture_keeps_its_logits(tmp_path, model_type):
    """Each supported encoder's head reads position 0, so each one's tail narrows: at least
    one product on one row, the same logits."""
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext
    from slimformer.provenance import read_provenance

    tiny_folder(tmp_path / "model", model_type, ["a", "b", "c", "oos"], layers=2)
    asked = [chain_of(k, CompressArguments()) for k in ("onnx", "onnx > cls")]
    made = run_chains(tmp_path / "model", asked, {c.key: tmp_path / c.suffix for c in asked},
                      tmp_path / "scratch", PassContext())
    np.testing.assert_allclose(logits(made["onnx > cls"]), logits(made["onnx"]), atol=1e-5)
    matmuls = read_provenance(made["onnx > cls"])["steps"][-1]["settings"]["matmuls"]
    assert matmuls >= 1
    assert sorted(last_hidden_rows(made["onnx > cls"]).values()).count(1) >= matmuls


def test_a_pipeline_loads_the_narrowed_graph(bert):
    from slimformer.serving.ort import onnx_pipeline

    pipe = onnx_pipeline(bert["onnx > O2 > cls"])
    answer = pipe(TEXTS[0], top_k=1)
    assert answer[0]["label"] == pipe.model.config.id2label[int(logits(bert["onnx"],
                                                                        TEXTS[:1]).argmax())]


def narrow(folder, tmp_path):
    from slimformer.compression.passes.base import PassContext
    from slimformer.compression.passes.onnx_cls import PASS, ClsConfig

    PASS.run(folder, tmp_path / "narrowed", ClsConfig(), PassContext())


def test_a_graph_that_also_returns_the_hidden_states_is_refused(bert, tmp_path):
    """With the last hidden state a graph output, the tail must keep every position: a one-line
    error, and no folder written."""
    import shutil

    import onnx

    folder = tmp_path / "with-hidden"
    shutil.copytree(bert["onnx"], folder)
    model = onnx.load(str(folder / "model.onnx"))
    read = next(n for n in model.graph.node if n.op_type == "Gather"
                and any(a.name == "axis" and a.i == 1 for a in n.attribute))
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(read.input[0]))
    onnx.save(model, str(folder / "model.onnx"))
    with pytest.raises(SlimformerError, match="nothing to narrow") as err:
        narrow(folder, tmp_path)
    assert "\n" not in str(err.value) and str(folder) in str(err.value)
    assert not (tmp_path / "narrowed").exists()


def test_narrowing_twice_or_after_int8_is_refused(bert, tmp_path):
    from slimformer.compression.passes.base import parse_chain

    with pytest.raises(SlimformerError, match="already runs on position 0"):
        narrow(bert["onnx > O2 > cls"], tmp_path)
    with pytest.raises(SlimformerError, match="cls must come before int8"):
        parse_chain("onnx > int8 > cls")


def test_an_unread_optional_output_does_not_stop_the_tail(bert, tmp_path):
    """ONNX Runtime's SkipLayerNormalization may name its optional outputs (the input-skip-bias
    sum); nothing reads them, so the norm still joins the tail and the logits stay."""
    import shutil

    import onnx

    folder = tmp_path / "named-outputs"
    shutil.copytree(bert["onnx > O2"], folder)
    model = onnx.load(str(folder / "model.onnx"))
    norms = [n for n in model.graph.node if n.op_type == "SkipLayerNormalization"]
    for norm in norms[-2:]:
        norm.output.extend(["", "", f"{norm.name}_unread_sum"])
    onnx.save(model, str(folder / "model.onnx"))
    narrow(folder, tmp_path)
    from slimformer.provenance import read_provenance

    assert read_provenance(tmp_path / "narrowed")["steps"][-1]["settings"]["matmuls"] == 3
    np.testing.assert_allclose(logits(tmp_path / "narrowed"), logits(bert["onnx > O2"]),
                               atol=1e-5)
