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
    asked = [chain_of(k, CompressArguments()) for k in ("onnx > emb4 > O2 > int8",
                                                        "onnx > O2 > int8", "onnx > emb4",
                                                        "onnx")]
    final = {c.key: root / f"model-{c.suffix}" for c in asked}
    return run_chains(root / "model", asked, final, root / "scratch", PassContext())


def test_the_word_embedding_table_becomes_gather_block_quantized(chains):
    from slimformer.models.onnx_files import op_counts
    from slimformer.provenance import read_provenance

    counts = op_counts(chains["onnx > emb4 > O2 > int8"] / "model.onnx")
    assert counts["GatherBlockQuantized"] == 1  # the word table; int8 takes the two others
    assert counts.get("DequantizeLinear", 0) >= 2
    assert counts.get("QAttention", 0) + counts.get("MatMulInteger", 0) > 0  # int8 came after
    assert counts.get("SkipLayerNormalization", 0) > 0  # fusion still ran
    steps = [s["step"] for s in read_provenance(chains["onnx > emb4 > O2 > int8"])["steps"]]
    assert steps == ["onnx-export", "onnx-embeddings-4bit", "onnx-optimize",
                     "onnx-quantize-dynamic"]
    record = read_provenance(chains["onnx > emb4"])["steps"][-1]["settings"]
    assert record == {"bits": 4, "block_size": 256, "symmetric": True, "tables": 1}


def test_four_bit_embeddings_shrink_the_graph_and_keep_its_answers(chains):
    from slimformer.serving.lean import LeanOnnxVariant

    small, plain = chains["onnx > emb4 > O2 > int8"], chains["onnx > O2 > int8"]
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
    ("onnx > O2 > emb4", {}, "emb4 must come before O2"),
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
    assert Emb4Config().block_size == 256
    with pytest.raises(SlimformerError, match="block size must be 16, 32"):
        Emb4Config(block_size=24)


def test_a_chain_spells_the_block_size():
    from slimformer.compression.chains import chain_of

    chain = chain_of("onnx > emb4-b128 > O2 > int8", CompressArguments())
    assert [c.block_size for p, c in zip(chain.passes, chain.configs) if p.name == "emb4"] == [128]
    assert chain.suffix == "onnx-emb4-b128-O2-int8"
    assert chain_of("onnx > emb4", CompressArguments()).configs[-1].block_size == 256
    with pytest.raises(SlimformerError, match="no pass 'emb4-b24'"):
        chain_of("onnx > emb4-b24", CompressArguments())
    with pytest.raises(SlimformerError, match="emb4-b256 must come before O2"):
        chain_of("onnx > O2 > emb4-b256", CompressArguments())
