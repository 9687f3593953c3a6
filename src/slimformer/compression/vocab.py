"""Vocabulary trimming: keep the word pieces the data uses, drop the other embedding rows.

In an int8 MiniLM the 30,522 x 384 word-embedding matrix is about half of the file, yet an
intent model sees a few thousand distinct word pieces (TextPruner's vocabulary pruning makes
the same observation). `trim_vocabulary` keeps the special tokens, every token the training
split tokenizes to, and the single-character pieces (and their `##` / `▁` forms, and byte
pieces) of a character set, so that text with unseen words still tokenizes into kept pieces
(WordPiece falls back to characters, then to [UNK]; Unigram finds its best segmentation among
the kept pieces, which for any text whose pieces were all kept is the one it had before). It
remaps the embedding rows in the original order and rewrites tokenizer.json (WordPiece and
Unigram models), vocab.txt (WordPiece) and tokenizer_config.json, so AutoTokenizer, pipeline()
and the lean predictor load the result with no custom code. Byte-level BPE (RoBERTa,
ModernBERT) is refused: its merges would have to be rewritten too.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slimformer.errors import fail

logger = logging.getLogger(__name__)

CHARACTER_SETS = ("ascii", "latin", "all", "none")
METASPACE = "\u2581"  # SentencePiece's word-start mark
TRIMMABLE = ("WordPiece", "Unigram")


@dataclass
class TrimVocabArguments:
    model: str = field(default="", metadata={"help": "PyTorch classifier folder to trim"})
    output_dir: str | None = field(default=None, metadata={
        "help": "where the trimmed model goes (default: MODEL-trimmed beside it)"})
    keep_characters: str = field(default="ascii", metadata={
        "help": "single-character pieces kept (with their ## forms) so unseen words still "
                "tokenize: ascii, latin (Latin-1 too), all, or none"})
    overwrite: bool = field(default=False, metadata={
        "help": "replace an existing folder that another step wrote"})


def keeps_character(token: str, charset: str) -> bool:
    """Single characters: WordPiece's `c` / `##c`, SentencePiece's `c` / `▁c` (and `▁`), and
    byte-fallback pieces `<0xNN>`, which spell out anything."""
    if charset == "none":
        return False
    if token == METASPACE or (token.startswith("<0x") and token.endswith(">") and len(token) == 6):
        return True
    bare = token[2:] if token.startswith("##") else token.removeprefix(METASPACE)
    if len(bare) != 1:
        return False
    return charset == "all" or ord(bare) < (128 if charset == "ascii" else 256)


def kept_token_ids(tokenizer: Any, texts: list[str], charset: str) -> list[int]:
    """Ids to keep, ascending (so the trimmed vocabulary keeps the original order)."""
    if charset not in CHARACTER_SETS:
        fail(f"unknown keep_characters {charset!r}; choose one of {', '.join(CHARACTER_SETS)}")
    kept = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 1000):
        for ids in tokenizer(texts[start:start + 1000], add_special_tokens=False)["input_ids"]:
            kept.update(ids)
    kept.update(i for token, i in tokenizer.get_vocab().items() if keeps_character(token, charset))
    return sorted(kept)


def outside_share(tokenizer: Any, texts: list[str], kept: set[int]) -> dict[str, float]:
    """How much of a split falls outside the kept tokens: share of tokens and of texts."""
    encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
    tokens = sum(len(ids) for ids in encoded)
    outside = sum(1 for ids in encoded for i in ids if i not in kept)
    texts_hit = sum(1 for ids in encoded if any(i not in kept for i in ids))
    return {"tokens_outside": outside, "token_share_outside": outside / max(tokens, 1),
            "texts_with_unkept_tokens": texts_hit,
            "text_share_with_unkept_tokens": texts_hit / max(len(texts), 1)}


def check_trimmable(model_type: str | None) -> None:
    if model_type not in TRIMMABLE:
        fail(f"trim-vocab supports WordPiece (BERT, DistilBERT, ELECTRA, MPNet) and Unigram "
             f"(XLM-RoBERTa, DeBERTa-v2) tokenizers; this one is {model_type!r} (byte-level "
             "BPE merges would have to be rewritten too)")


def tokenizer_model_type(folder: Path) -> str | None:
    """The tokenizer.json model's type (WordPiece, Unigram, BPE), None without the file."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return None
    return (json.loads(path.read_text(encoding="utf-8")).get("model") or {}).get("type")


def remap_tokenizer_json(data: dict[str, Any], remap: dict[int, int]) -> dict[str, Any]:
    """tokenizer.json with the vocabulary, added tokens and post-processor ids remapped."""
    model = data.get("model") or {}
    check_trimmable(model.get("type"))
    vocab = model["vocab"]
    if model["type"] == "WordPiece":  # {token: id}
        model["vocab"] = {token: remap[i] for token, i in
                          sorted(vocab.items(), key=lambda x: x[1]) if i in remap}
    else:  # Unigram: [[piece, score], ...] in id order, and the id of its unknown piece
        model["vocab"] = [vocab[i] for i in sorted(remap)]
        if model.get("unk_id") is not None:
            if model["unk_id"] not in remap:
                fail("the tokenizer's unknown piece was not kept")
            model["unk_id"] = remap[model["unk_id"]]
    for token in data.get("added_tokens") or []:
        if token["id"] not in remap:
            fail(f"added token {token['content']!r} was not kept")
        token["id"] = remap[token["id"]]
    processor = data.get("post_processor") or {}
    for special in (processor.get("special_tokens") or {}).values():  # TemplateProcessing
        special["ids"] = [remap[i] for i in special["ids"]]
    for key in ("sep", "cls"):  # BertProcessing: [token, id]
        if isinstance(processor.get(key), list):
            processor[key][1] = remap[processor[key][1]]
    return data


def write_tokenizer(source: Path, stage: Path, remap: dict[int, int]) -> None:
    tokenizer_json = json.loads((source / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer_json = remap_tokenizer_json(tokenizer_json, remap)
    (stage / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False),
                                          encoding="utf-8")
    vocab = tokenizer_json["model"]["vocab"]
    if isinstance(vocab, dict):  # WordPiece's slow tokenizer file; SentencePiece models are
        # not rewritten, so the fast tokenizer.json is the only one left beside the model
        (stage / "vocab.txt").write_text(
            "".join(f"{token}\n" for token, _ in sorted(vocab.items(), key=lambda x: x[1])),
            encoding="utf-8")
    for name in ("special_tokens_map.json",):
        if (source / name).is_file():
            (stage / name).write_text((source / name).read_text(encoding="utf-8"),
                                      encoding="utf-8")
    config_path = source / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        decoder = config.get("added_tokens_decoder") or {}
        config["added_tokens_decoder"] = {str(remap[int(i)]): token for i, token in
                                          decoder.items() if int(i) in remap}
        (stage / "tokenizer_config.json").write_text(json.dumps(config, indent=2),
                                                     encoding="utf-8")


def trim_model(model: Any, kept: list[int]) -> Any:
    """The classifier with only the kept rows of its word embeddings, in the same order."""
    import torch

    old = model.get_input_embeddings()
    remap = {old_id: new_id for new_id, old_id in enumerate(kept)}
    pad = model.config.pad_token_id
    new = torch.nn.Embedding(len(kept), old.embedding_dim,
                             padding_idx=remap.get(pad) if pad is not None else None)
    with torch.no_grad():
        new.weight.copy_(old.weight[torch.tensor(kept)])
    model.set_input_embeddings(new)
    model.config.vocab_size = len(kept)
    if pad is not None:
        model.config.pad_token_id = remap[pad]
    return model


def trim_vocabulary(args: TrimVocabArguments, data_args: Any) -> Path:
    """Trim a classifier folder's vocabulary to what the training split uses; returns the
    output folder (written to a staging folder and renamed at the end)."""
    from slimformer.data.dataset import load_data
    from slimformer.files import check_target, staged_folder
    from slimformer.models.aliases import resolve_path
    from slimformer.models.loading import load_classifier_folder, load_folder_tokenizer
    from slimformer.provenance import write_provenance

    source = resolve_path(args.model)
    if not (source / "tokenizer.json").is_file():
        fail(f"{source} has no tokenizer.json (a fast tokenizer): trim-vocab rewrites it")
    check_trimmable(tokenizer_model_type(source))
    output = Path(args.output_dir) if args.output_dir else source.with_name(
        source.name + "-trimmed")
    if args.keep_characters not in CHARACTER_SETS:
        fail(f"unknown keep_characters {args.keep_characters!r}; choose one of "
             f"{', '.join(CHARACTER_SETS)}")
    check_target(output, "trim-vocab", args.overwrite)  # before any work
    data = load_data(data_args)
    tokenizer = load_folder_tokenizer(source)
    model = load_classifier_folder(source)
    kept = kept_token_ids(tokenizer, data["train"]["text"][:], args.keep_characters)
    remap = {old: new for new, old in enumerate(kept)}
    test = outside_share(tokenizer, data["test"]["text"][:], set(kept))
    logger.info("kept %d of %d tokens; test split: %.2f%% of tokens (%d texts) outside them",
                len(kept), len(tokenizer), 100 * test["token_share_outside"],
                test["texts_with_unkept_tokens"])
    with staged_folder(output, args.overwrite, step="trim-vocab") as stage:
        write_tokenizer(source, stage, remap)
        trim_model(model, kept).save_pretrained(stage, safe_serialization=True)
        write_provenance(stage, "trim-vocab", {
            "kept_tokens": len(kept), "original_tokens": len(tokenizer),
            "kept_from": "special tokens, every token of the training split, and single "
                         f"characters ({args.keep_characters}) with their ## forms",
            "test_tokens_outside": test["tokens_outside"],
            "test_token_share_outside": round(test["token_share_outside"], 5),
            "test_texts_with_unkept_tokens": test["texts_with_unkept_tokens"]}, source=source)
    return output
