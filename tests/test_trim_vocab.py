"""Vocabulary trimming: the same logits where every token was kept, a working tokenizer for
any text, loadable with no custom code, and ONNX int8 on top."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from slimformer.errors import SlimformerError

from .conftest import tiny_bert


@pytest.fixture(scope="module")
def trimmed(tmp_path_factory, tokenizer, clinc_dir):
    from slimformer.compression.vocab import TrimVocabArguments, trim_vocabulary
    from slimformer.data.args import DataArguments

    root = tmp_path_factory.mktemp("trim")
    tiny_bert(initializer_range=0.5).save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    data_args = DataArguments(data_file=str(clinc_dir), max_samples=300)
    output = trim_vocabulary(TrimVocabArguments(model=str(root / "model")), data_args)
    return root / "model", output, data_args


def logits(folder, texts):
    from slimformer.serving.registry import load_variant

    return load_variant(f"v={folder}@pytorch").predict_logits(texts)


def test_kept_tokens_give_the_same_logits(trimmed, clinc):
    from transformers import AutoTokenizer

    source, output, _ = trimmed
    texts = clinc["train"].shuffle(seed=0).select(range(300))["text"][:20]  # all kept
    np.testing.assert_allclose(logits(output, texts), logits(source, texts), atol=1e-5)
    config = json.loads((output / "config.json").read_text())
    original = AutoTokenizer.from_pretrained(source)
    assert config["vocab_size"] < len(original) // 5
    assert (output / "model.safetensors").stat().st_size < (
        source / "model.safetensors").stat().st_size


def test_the_tokenizer_loads_everywhere_and_still_tokenizes_unseen_text(trimmed):
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer, pipeline

    _, output, _ = trimmed
    auto = AutoTokenizer.from_pretrained(output)
    raw = Tokenizer.from_file(str(output / "tokenizer.json"))
    raw.no_padding()  # all-MiniLM-L6-v2 ships a tokenizer.json that pads to 128
    text = "Zyxwvut quokka's café grüße 東京 ✈ 42!"
    ids = auto(text)["input_ids"]
    assert ids == raw.encode(text).ids
    assert ids[0] == auto.cls_token_id and ids[-1] == auto.sep_token_id
    assert max(ids) < auto.vocab_size == len(auto)
    assert auto.convert_ids_to_tokens(auto.pad_token_id) == "[PAD]"
    pieces = auto.tokenize("zyxwvut quokka")  # unseen words: spelled out in kept pieces
    assert "[UNK]" not in pieces and len(pieces) > 2
    assert auto.tokenize("東京") == ["[UNK]", "[UNK]"]  # no kept piece: [UNK], not an error
    prediction = pipeline("text-classification", model=str(output))(text)
    assert prediction[0]["label"] in json.loads((output / "config.json").read_text()
                                                 )["id2label"].values()


def test_provenance_records_what_was_kept(trimmed):
    from slimformer.provenance import read_provenance

    source, output, _ = trimmed
    step = read_provenance(output)["steps"][-1]
    assert step["step"] == "trim-vocab"
    settings = step["settings"]
    assert settings["kept_tokens"] == json.loads((output / "config.json").read_text()
                                                 )["vocab_size"]
    assert settings["original_tokens"] == 30522
    assert 0 < settings["test_token_share_outside"] < 0.5  # 300 train rows miss some test words


def test_onnx_int8_of_a_trimmed_model_runs_in_the_lean_predictor(trimmed, tmp_path, clinc):
    from slimformer.compression.onnx.export import export_onnx
    from slimformer.compression.onnx.quantize import quantize_dynamic
    from slimformer.serving.registry import load_variant

    _, output, _ = trimmed
    export_onnx(output, tmp_path / "onnx")
    quantize_dynamic(tmp_path / "onnx", tmp_path / "int8", "auto", True)
    texts = clinc["test"].select(range(16))["text"][:] + ["Zyxwvut ✈ 東京"]
    lean = load_variant(f"v={tmp_path / 'onnx'}@onnx-lean").predict_logits(texts)
    torch_logits = logits(output, texts)
    np.testing.assert_allclose(lean, torch_logits, atol=1e-4)
    assert load_variant(f"v={tmp_path / 'int8'}@onnx-lean").predict(texts)


def test_bad_input_is_one_line(tmp_path, tiny_bert_folder, clinc_dir):
    from slimformer.compression.vocab import TrimVocabArguments, trim_vocabulary
    from slimformer.data.args import DataArguments

    data_args = DataArguments(data_file=str(clinc_dir), max_samples=50)
    with pytest.raises(SlimformerError, match="unknown keep_characters 'greek'"):
        trim_vocabulary(TrimVocabArguments(model=str(tiny_bert_folder),
                                           output_dir=str(tmp_path / "x"),
                                           keep_characters="greek"), data_args)
    (tmp_path / "slow").mkdir()
    tiny_bert().save_pretrained(tmp_path / "slow")
    with pytest.raises(SlimformerError, match="no tokenizer.json"):
        trim_vocabulary(TrimVocabArguments(model=str(tmp_path / "slow")), data_args)
    assert not (tmp_path / "x").exists()
    assert torch.get_num_threads() >= 1


@pytest.mark.parametrize("model_type", ["xlm-roberta", "deberta-v2"])
def test_unigram_tokenizers_trim_too(tmp_path, model_type, clinc_dir):
    """SentencePiece Unigram (XLM-R, DeBERTa-v2): the kept pieces' ids are remapped with their
    scores, text whose pieces were all kept gives the same logits, and any text still runs."""
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from slimformer.compression.vocab import TrimVocabArguments, trim_vocabulary
    from slimformer.data.args import DataArguments
    from slimformer.data.clinc import label_config

    from .tiny_models import CORPUS, tiny_folder

    labels = list(label_config()["id2label"].values())
    source = tiny_folder(tmp_path / "model", model_type, labels)
    data_args = DataArguments(data_file=str(clinc_dir), max_samples=40)
    output = trim_vocabulary(TrimVocabArguments(model=str(source)), data_args)
    original = AutoTokenizer.from_pretrained(source)
    auto = AutoTokenizer.from_pretrained(output)
    assert type(auto) is type(original)
    assert len(auto) < len(original)
    assert not (output / "vocab.txt").exists()
    kept = json.loads((output / "tokenizer.json").read_text())["model"]
    assert kept["type"] == "Unigram" and kept["vocab"][kept["unk_id"]][0] == original.unk_token
    # what the 40 training rows used tokenizes to the same pieces and logits
    from slimformer.data.dataset import load_data

    texts = load_data(data_args)["train"]["text"][:10]
    assert [auto.tokenize(t) for t in texts] == [original.tokenize(t) for t in texts]
    np.testing.assert_allclose(logits(output, texts), logits(source, texts), atol=1e-5)
    # unseen words and characters still give in-range ids, in every loader
    text = "Zyxwvut quokka's café 東京 " + CORPUS[0]
    ids = auto(text)["input_ids"]
    assert ids == Tokenizer.from_file(str(output / "tokenizer.json")).encode(text).ids
    assert max(ids) < len(auto) and auto.unk_token_id in ids
    assert np.isfinite(logits(output, [text])).all()


def test_byte_level_bpe_is_refused_in_one_line(tmp_path, clinc_dir):
    from slimformer.compression.vocab import TrimVocabArguments, trim_vocabulary
    from slimformer.data.args import DataArguments

    from .tiny_models import tiny_folder

    source = tiny_folder(tmp_path / "model", "roberta", ["a", "oos"])
    with pytest.raises(SlimformerError, match="this one is 'BPE'"):
        trim_vocabulary(TrimVocabArguments(model=str(source)),
                        DataArguments(data_file=str(clinc_dir), max_samples=40))
    assert not (tmp_path / "model-trimmed").exists()
