"""Tiny random classifiers of every architecture slimformer supports, each with a real tokenizer
of its own kind (WordPiece, byte-level BPE or Unigram) trained in the test with `tokenizers`."""

from __future__ import annotations

from pathlib import Path

# A few hundred words of call-centre text: enough for each tokenizer trainer.
CORPUS = [
    "what is my account balance", "transfer money to my savings account",
    "how do i reset my pin", "book a table for two tonight", "what's the weather tomorrow",
    "cancel my reservation please", "play some jazz music", "set an alarm for six am",
    "how many calories are in an apple", "tell me a joke", "my card was declined",
    "when is my next bill due", "translate hello into french", "find a flight to boston",
    "is there traffic on the way to work", "what time is it in tokyo", "order more paper towels",
    "how long should i cook chicken", "change the language to spanish", "who made you",
] * 4

WORDPIECE = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
ROBERTA = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")

# model type -> (tokenizer kind, special tokens, config overrides)
ARCHITECTURES = {
    "bert": ("wordpiece", WORDPIECE, {}),
    "distilbert": ("wordpiece", WORDPIECE, {"dim": 32, "n_layers": 2, "n_heads": 4,
                                             "hidden_dim": 64}),
    "electra": ("wordpiece", WORDPIECE, {"embedding_size": 32}),
    "mpnet": ("wordpiece", ("<s>", "<pad>", "</s>", "<unk>", "<mask>"), {}),
    "roberta": ("bpe", ROBERTA, {"max_position_embeddings": 130, "type_vocab_size": 1}),
    "xlm-roberta": ("unigram", ROBERTA, {"max_position_embeddings": 130,
                                         "type_vocab_size": 1}),
    "deberta-v2": ("unigram", WORDPIECE, {
        "relative_attention": True, "pos_att_type": ["p2c", "c2p"], "max_relative_positions": -1,
        "position_buckets": 32, "norm_rel_ebd": "layer_norm", "share_att_key": True,
        "position_biased_input": False, "type_vocab_size": 0}),
    "modernbert": ("bpe", WORDPIECE, {"cls_token_id": 2, "sep_token_id": 3, "bos_token_id": 2,
                                      "eos_token_id": 3, "global_attn_every_n_layers": 3}),
}


def train_tokenizer(kind: str, specials: tuple[str, ...]):
    """A `tokenizers.Tokenizer` of the given kind trained on CORPUS, with the model's specials
    and a post-processor that adds them like the architecture's own tokenizer."""
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    if kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=specials[WORDPIECE.index("[UNK]")]
                                         if specials == WORDPIECE else "<unk>"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=True)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(vocab_size=300, special_tokens=list(specials))
    elif kind == "bpe":
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=list(specials),
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:
        tok = Tokenizer(models.Unigram())
        tok.pre_tokenizer = pre_tokenizers.Metaspace()
        tok.decoder = decoders.Metaspace()
        trainer = trainers.UnigramTrainer(vocab_size=300, special_tokens=list(specials),
                                          unk_token=specials[3] if specials == ROBERTA
                                          else "[UNK]")
    tok.train_from_iterator(CORPUS, trainer)
    cls, sep = (("<s>", "</s>") if "<s>" in specials else ("[CLS]", "[SEP]"))
    tok.post_processor = processors.TemplateProcessing(
        single=f"{cls} $A {sep}", pair=f"{cls} $A {sep} {sep} $B {sep}",
        special_tokens=[(cls, tok.token_to_id(cls)), (sep, tok.token_to_id(sep))])
    return tok


def tiny_tokenizer(model_type: str):
    """The architecture's own fast tokenizer class around a freshly trained tokenizer."""
    from transformers import AutoTokenizer
    from transformers.models.auto.tokenization_auto import TOKENIZER_MAPPING_NAMES

    kind, specials, _ = ARCHITECTURES[model_type]
    fast_name = TOKENIZER_MAPPING_NAMES[model_type][1]
    cls = getattr(__import__("transformers", fromlist=[fast_name]), fast_name)
    names = dict(zip(("pad", "unk", "cls", "sep", "mask"), WORDPIECE)) if specials == WORDPIECE \
        else {"pad": "<pad>", "unk": "<unk>", "cls": "<s>", "sep": "</s>", "mask": "<mask>",
              "bos": "<s>", "eos": "</s>"}
    tokenizer = cls(tokenizer_object=train_tokenizer(kind, specials),
                    **{f"{k}_token": v for k, v in names.items()}, model_max_length=128)
    assert AutoTokenizer  # the folder must load through AutoTokenizer (checked by callers)
    return tokenizer


def tiny_classifier(model_type: str, labels: list[str], vocab_size: int, pad_token_id: int,
                    layers: int = 2):
    """A random `model_type` classifier: hidden 32, 4 heads, FFN 64, `layers` layers."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    torch.manual_seed(0)
    settings = {"vocab_size": vocab_size, "hidden_size": 32, "num_hidden_layers": layers,
                "num_attention_heads": 4, "intermediate_size": 64,
                "max_position_embeddings": 128, "pad_token_id": pad_token_id,
                "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                "id2label": dict(enumerate(labels)),
                "label2id": {name: i for i, name in enumerate(labels)},
                **ARCHITECTURES[model_type][2]}
    if model_type == "distilbert":
        settings["n_layers"] = layers
    config = AutoConfig.for_model(model_type, **settings)
    return AutoModelForSequenceClassification.from_config(config).eval()


def tiny_folder(folder: Path, model_type: str, labels: list[str], layers: int = 2) -> Path:
    tokenizer = tiny_tokenizer(model_type)
    model = tiny_classifier(model_type, labels, len(tokenizer), tokenizer.pad_token_id, layers)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
