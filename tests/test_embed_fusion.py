"""The opt pass's embedding fusion (`O2-emb`): ORTOptimizer's EmbedLayerNormalization, which
Optimum's levels leave out. Real exports of tiny models, real fusion, real ONNX Runtime
sessions."""

from __future__ import annotations

import numpy as np
import pytest

from slimformer.compression.args import CompressArguments
from slimformer.errors import SlimformerError

from .test_cls_tail import TEXTS, assert_int8_alike, logits
from .tiny_models import ARCHITECTURES, tiny_folder

CHAINS = ("onnx", "onnx > O2", "onnx > O2-emb", "onnx > O2 > cls > int8",
          "onnx > O2-emb > cls > int8")


@pytest.fixture(scope="module")
def bert(tmp_path_factory, tokenizer):
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    from .conftest import tiny_bert

    root = tmp_path_factory.mktemp("emb-bert")
    tiny_bert(num_hidden_layers=2).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    asked = [chain_of(k, CompressArguments()) for k in CHAINS]
    return run_chains(root / "model", asked, {c.key: root / f"model-{c.suffix}" for c in asked},
                      root / "scratch", PassContext())


def ops(folder) -> dict[str, int]:
    from slimformer.models.onnx_files import op_counts

    return op_counts(folder / "model.onnx")


def test_spellings_name_the_folder():
    from slimformer.compression.chains import chain_of

    assert chain_of("onnx > O2-emb > cls > int8", CompressArguments()).suffix == \
        "onnx-O2-emb-cls-int8"
    # opt-emb takes the run's level, as opt does
    assert chain_of("onnx > opt-emb", CompressArguments(optimization_level="O1")).suffix == \
        "onnx-O1-emb"
    assert chain_of("onnx > O2", CompressArguments()).suffix == "onnx-O2"


@pytest.mark.parametrize("chain, message", [
    ("onnx > O2-emb > emb4 > int8", "emb4 cannot follow O2-emb"),
    ("onnx > emb4 > O2-emb", "O2-emb must come before emb4"),
    ("onnx > O5-emb", "unknown variant"),
])
def test_embedding_fusion_and_4bit_embeddings_do_not_chain(chain, message):
    """emb4 quantizes the table that the fusion folds away: refused while parsing, before any
    work, in one line."""
    from slimformer.compression.passes.base import parse_chain

    with pytest.raises(SlimformerError, match=message) as err:
        parse_chain(chain)
    assert "\n" not in str(err.value)


def test_the_fused_embeddings_keep_the_logits(bert):
    """One EmbedLayerNormalization where plain O2 has none; the same logits as the export, on a
    padded batch and one query at a time; provenance says the embeddings were fused."""
    from slimformer.provenance import read_provenance

    assert ops(bert["onnx > O2-emb"]).get("EmbedLayerNormalization", 0) == 1
    assert ops(bert["onnx > O2"]).get("EmbedLayerNormalization", 0) == 0
    np.testing.assert_allclose(logits(bert["onnx > O2-emb"]), logits(bert["onnx"]), atol=1e-5)
    for text in TEXTS[:3]:
        np.testing.assert_allclose(logits(bert["onnx > O2-emb"], [text]),
                                   logits(bert["onnx"], [text]), atol=1e-5)
    settings = read_provenance(bert["onnx > O2-emb"])["steps"][-1]["settings"]
    assert settings["fuse_embeddings"] is True and settings["level"] == "O2"
    assert read_provenance(bert["onnx > O2"])["steps"][-1]["settings"]["fuse_embeddings"] is False


def test_int8_quantizes_the_fused_embeddings(bert):
    """int8 after the fusion and the cls tail: QEmbedLayerNormalization (int8 tables), and the
    same answers as the unfused int8 graph."""
    counts = ops(bert["onnx > O2-emb > cls > int8"])
    assert counts.get("QEmbedLayerNormalization", 0) == 1
    assert counts.get("Gather", 0) < ops(bert["onnx > O2 > cls > int8"]).get("Gather", 0)
    assert_int8_alike(logits(bert["onnx > O2-emb > cls > int8"]),
                      logits(bert["onnx > O2 > cls > int8"]))


@pytest.mark.parametrize("model_type", sorted(ARCHITECTURES))
def test_every_architecture_keeps_its_logits(tmp_path, model_type):
    """Where ONNX Runtime knows the architecture's embeddings it fuses them; where it does
    not, the graph is O2's (which fuses every listed architecture, test_architectures.py).
    Either way the logits stay."""
    from slimformer.compression.chains import chain_of, run_chains
    from slimformer.compression.passes.base import PassContext

    tiny_folder(tmp_path / "model", model_type, ["a", "b", "c", "oos"], layers=2)
    asked = [chain_of(k, CompressArguments()) for k in ("onnx", "onnx > O2-emb")]
    made = run_chains(tmp_path / "model", asked, {c.key: tmp_path / c.suffix for c in asked},
                      tmp_path / "scratch", PassContext())
    np.testing.assert_allclose(logits(made["onnx > O2-emb"]), logits(made["onnx"]), atol=1e-5)
    if model_type == "bert":
        assert ops(made["onnx > O2-emb"]).get("EmbedLayerNormalization", 0) == 1
