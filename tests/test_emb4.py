"""The 4-bit embeddings pass (compression/passes/onnx_emb4.py): real export, real
MatMulNBitsQuantizer, real ONNX Runtime sessions."""

from __future__ import annotations

import numpy as np
import pytest

from slimformer.compression.args import CompressArguments
from slimformer.errors import SlimformerError

TEXTS = ["what is my balance", "transfer money to my savings account", "will it rain today",
         "book a table for two", "how do i say hello in french", "set an alarm for 7 am"]


@pytest.fixture(scope="module")
def chains(tmp_path_factory, tokenizer):
    """The tiny model's fused int8 with and without 4-bit embeddings."""
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    from .conftest import tiny_bert

    root = tmp_path_factory.mktemp("emb4")
    tiny_bert().save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    asked = [chain_of(k, CompressArguments()) for k in ("onnx > O2 > emb4 > int8",
                                                        "onnx > O2 > int8", "onnx > emb4",
                                                        "onnx")]
    final = {c.key: root / f"model-{c.suffix}" for c in asked}
    return run_chains(root / "model", asked, final, root / "scratch", PassContext())


def test_the_word_embedding_table_becomes_a_plain_4_bit_lookup(chains):
    from slimformer.models.onnx_files import op_counts
    from slimformer.provenance import read_provenance

    counts = op_counts(chains["onnx > O2 > emb4 > int8"] / "model.onnx")
    assert "GatherBlockQuantized" not in counts  # its kernel is slow: plain operators instead
    assert counts.get("DequantizeLinear", 0) >= 2  # int8 takes the position and type tables
    import onnx

    graph = onnx.load(chains["onnx > O2 > emb4 > int8"] / "model.onnx").graph
    types = {i.name: i.data_type for i in graph.initializer}
    word = [n for n in types if n.endswith("_packed")]
    assert len(word) == 1 and types[word[0]] == onnx.TensorProto.UINT8  # two values a byte
    # int8 left the lookup's integer constants alone (none was requantized)
    prefix = word[0][:-len("packed")]
    assert types[prefix + "units"] == onnx.TensorProto.INT32
    assert not [n for n in types if n.startswith(prefix) and "quantized" in n]
    assert counts.get("QAttention", 0) + counts.get("MatMulInteger", 0) > 0  # int8 came after
    assert counts.get("SkipLayerNormalization", 0) > 0  # fusion still ran
    steps = [s["step"] for s in read_provenance(chains["onnx > O2 > emb4 > int8"])["steps"]]
    assert steps == ["onnx-export", "onnx-optimize", "onnx-embeddings-4bit",
                     "onnx-quantize-dynamic"]
    record = read_provenance(chains["onnx > emb4"])["steps"][-1]["settings"]
    assert record == {"bits": 4, "block_size": "row", "symmetric": True, "tables": 1,
                      "lookup": "plain operators"}


def test_onnx_runtime_unpacks_the_table_once_when_it_loads_the_graph(chains, tmp_path):
    """The unpacking reads constants only: the session folds it into an int8 table, so the
    lookup that runs per query is a Gather, a Cast, the scales' Gather and a Mul."""
    import onnx
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "loaded.onnx")
    ort.InferenceSession(str(chains["onnx > O2 > emb4 > int8"] / "model.onnx"), options,
                         providers=["CPUExecutionProvider"])
    loaded = onnx.load(tmp_path / "loaded.onnx").graph
    ops = {n.op_type for n in loaded.node}
    assert not ops & {"BitShift", "BitwiseAnd", "Concat"}  # folded away
    tables = [i for i in loaded.initializer if i.name.endswith("_table")]
    assert [(list(t.dims), t.data_type) for t in tables] == [([30522, 32], onnx.TensorProto.INT8)]


def test_four_bit_embeddings_shrink_the_graph_and_keep_its_answers(chains):
    from slimformer.serving.lean import LeanOnnxVariant

    small, plain = chains["onnx > O2 > emb4 > int8"], chains["onnx > O2 > int8"]
    size = {f: (f / "model.onnx").stat().st_size for f in (small, plain)}
    # the 30,522 x 32 word table, most of this graph: 1 MB at int8, 0.5 MB + scales at 4 bits
    assert size[small] < 0.75 * size[plain]
    # 4 bits move each table entry by at most half a step of its block's scale: the logits
    # stay close to the fp32 graph's
    a = LeanOnnxVariant.load(chains["onnx > emb4"], "emb4", 1).predict_logits(TEXTS)
    b = LeanOnnxVariant.load(chains["onnx"], "fp32", 1).predict_logits(TEXTS)
    assert np.isfinite(a).all() and a.shape == b.shape
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


@pytest.mark.parametrize(("spec", "settings", "message"), [
    ("onnx > emb4 > O2", {}, "O2 must come before emb4"),
    ("onnx > int8 > emb4", {}, "emb4 must come before int8"),
    ("emb4", {}, "emb4 takes a onnx folder"),
])
def test_emb4_in_the_wrong_place_is_refused_before_any_work(spec, settings, message):
    from slimformer.compression.chains import chain_of

    with pytest.raises(SlimformerError, match=message):
        chain_of(spec, CompressArguments(**settings))


def test_a_bad_block_size_is_refused_and_another_names_its_folder():
    from slimformer.compression.passes.onnx_emb4 import Emb4Config

    assert (Emb4Config().label, Emb4Config(block_size=128).label) == ("emb4", "emb4-b128")
    assert Emb4Config().block_size is None  # one scale per row
    assert (Emb4Config().quantizer_block(384), Emb4Config().quantizer_block(8),
            Emb4Config(block_size=32).quantizer_block(384)) == (512, 16, 32)
    with pytest.raises(SlimformerError, match="block size must be 16, 32"):
        Emb4Config(block_size=24)


def test_a_chain_spells_the_block_size():
    from slimformer.compression.chains import chain_of

    chain = chain_of("onnx > O2 > emb4-b128 > int8", CompressArguments())
    assert [c.block_size for p, c in zip(chain.passes, chain.configs) if p.name == "emb4"] == [128]
    assert chain.suffix == "onnx-O2-emb4-b128-int8"
    assert chain_of("onnx > emb4", CompressArguments()).configs[-1].block_size is None
    with pytest.raises(SlimformerError, match="no pass 'emb4-b24'"):
        chain_of("onnx > emb4-b24", CompressArguments())
    with pytest.raises(SlimformerError, match="O2 must come before emb4-b256"):
        chain_of("onnx > emb4-b256 > O2", CompressArguments())


def lookup_model(table, scales, width: int, block: int):
    """One GatherBlockQuantized on an INT4 table, as MatMulNBitsQuantizer makes it."""
    from onnx import TensorProto, helper, numpy_helper

    flat = np.append(table.ravel() & 0x0F, [0] * (table.size % 2)).astype(np.uint8)
    rows = len(table)
    initializer = helper.make_tensor("table", TensorProto.INT4, [rows, width],
                                     (flat[0::2] | (flat[1::2] << 4)).tobytes(), raw=True)
    node = helper.make_node("GatherBlockQuantized", ["table", "ids", "scales"], ["out"],
                            domain="com.microsoft", block_size=block, bits=4,
                            gather_axis=0, quantize_axis=1)
    graph = helper.make_graph(
        [node], "lookup", [helper.make_tensor_value_info("ids", TensorProto.INT64, [1, None])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, None, width])],
        [initializer, numpy_helper.from_array(scales, "scales")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21),
                                                    helper.make_opsetid("com.microsoft", 1)])
    model.ir_version = 10
    return model


def run_lookup(model, ids):
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"ids": ids})[0]


# 384 in blocks of 256 is one full block and one half; a block wider than the row is one
# scale per row (the default); 33 is an odd width, packed with a padding column
@pytest.mark.parametrize(("width", "block"), [(384, 256), (384, 512), (64, 16), (33, 16)])
def test_the_plain_lookup_computes_what_gather_block_quantized_does(width, block):
    """One GatherBlockQuantized graph and its rewrite, run by ONNX Runtime on the same ids."""
    from slimformer.compression.onnx.nibble_lookup import as_plain_ops

    rng = np.random.default_rng(0)
    rows, blocks = 50, -(-width // block)
    values = rng.integers(-8, 8, (rows, width))
    scales = rng.uniform(1e-4, 0.1, (rows, blocks)).astype(np.float32)
    model = lookup_model(values, scales, width, block)
    ids = np.array([[3, 0, 49, 3, 17]], dtype=np.int64)
    expected = values[ids[0]] * np.repeat(scales[ids[0]], block, axis=1)[:, :width]
    if width % 2 == 0:  # ONNX Runtime's kernel agrees with the formula
        np.testing.assert_allclose(run_lookup(model, ids)[0], expected, rtol=1e-6)
    assert as_plain_ops(model) == 1
    assert [n.op_type for n in model.graph.node].count("GatherBlockQuantized") == 0
    np.testing.assert_allclose(run_lookup(model, ids)[0], expected, rtol=1e-6, atol=1e-9)
