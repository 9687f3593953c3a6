"""`int8-float-head`: dynamic int8 with the classification head's products kept in float (real
export, real ORTQuantizer, real ONNX Runtime sessions, BERT's pooler and DistilBERT's
pre-classifier alike)."""

from __future__ import annotations

import numpy as np
import pytest

from slimformer.compression.args import CompressArguments
from slimformer.errors import SlimformerError

TEXTS = ["what is my balance", "transfer money to my savings account", "will it rain today",
         "book a table for two"]


@pytest.fixture(scope="module", params=["bert", "distilbert"])
def chains(request, tmp_path_factory, tokenizer):
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    from .conftest import tiny_bert, tiny_distilbert

    root = tmp_path_factory.mktemp(request.param)
    (tiny_bert if request.param == "bert" else tiny_distilbert)().save_pretrained(root / "m")
    tokenizer.save_pretrained(root / "m")
    asked = [chain_of(k, CompressArguments()) for k in ("onnx > int8-float-head",
                                                        "onnx > int8", "onnx")]
    final = {c.key: root / f"m-{c.suffix}" for c in asked}
    return run_chains(root / "m", asked, final, root / "scratch", PassContext())


def test_the_head_stays_float_and_the_encoder_is_int8(chains):
    import onnx

    from slimformer.models.onnx_files import op_counts
    from slimformer.provenance import read_provenance

    head, whole = chains["onnx > int8-float-head"], chains["onnx > int8"]
    assert head.name.endswith("-onnx-int8-float-head")
    counts = {f: op_counts(f / "model.onnx") for f in (head, whole)}
    # two products in either head: BERT's pooler and classifier, DistilBERT's pre-classifier
    # and classifier; every other one is int8 in both graphs
    assert counts[head]["MatMulInteger"] == counts[whole]["MatMulInteger"] - 2
    settings = read_provenance(head)["steps"][-1]["settings"]
    assert "float_nodes" not in read_provenance(whole)["steps"][-1]["settings"]
    graph = onnx.load(head / "model.onnx").graph
    floats = [n for n in graph.node if n.name in settings["float_nodes"]]
    assert [n.op_type in ("MatMul", "Gemm") for n in floats] == [True, True]
    # the two products read their inputs in float: no integer operator feeds them
    producers = {out: n.op_type for n in graph.node for out in n.output}
    assert not [i for n in floats for i in n.input if producers.get(i) == "DynamicQuantizeLinear"]
    assert any(n.op_type == "MatMulInteger" for n in graph.node)  # the encoder was quantized


def test_a_float_head_gives_the_fp32_graphs_answers_closely(chains):
    from slimformer.serving.lean import LeanOnnxVariant

    logits = {k: LeanOnnxVariant.load(f, k, 1).predict_logits(TEXTS) for k, f in chains.items()}
    reference = logits["onnx"]
    for key in ("onnx > int8-float-head", "onnx > int8"):
        assert logits[key].shape == reference.shape and np.isfinite(logits[key]).all()
        assert np.corrcoef(logits[key].ravel(), reference.ravel())[0, 1] > 0.9


def test_a_graph_without_a_head_is_refused_in_one_line(tmp_path):
    from onnx import TensorProto, helper, save

    from slimformer.compression.onnx.quantize import quantize_dynamic

    # the encoder's normalization is the output: there is no head to keep in float
    graph = helper.make_graph(
        [helper.make_node("LayerNormalization", ["x", "g", "b"], ["logits"], axis=-1)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor("g", TensorProto.FLOAT, [4], [1.0] * 4),
         helper.make_tensor("b", TensorProto.FLOAT, [4], [0.0] * 4)])
    (tmp_path / "src").mkdir()
    save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
         tmp_path / "src" / "model.onnx")
    with pytest.raises(SlimformerError, match="no classification head") as err:
        quantize_dynamic(tmp_path / "src", tmp_path / "out", float_head=True)
    assert "\n" not in str(err.value) and not (tmp_path / "out").exists()


def test_the_spelling_names_the_folder_and_still_quantizes_once():
    from slimformer.compression.chains import chain_of

    chain = chain_of("onnx > O2 > int8-float-head", CompressArguments(preset="auto"))
    assert chain.suffix == "onnx-O2-int8-float-head"
    assert [c.float_head for c in chain.configs[-1:]] == [True]
    assert chain_of("onnx > int8", CompressArguments()).configs[-1].float_head is False
    with pytest.raises(SlimformerError, match="quantizes twice"):
        chain_of("onnx > int8 > int8-float-head", CompressArguments())
