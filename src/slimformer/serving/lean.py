"""The lean ONNX predictor: onnxruntime + tokenizers + numpy, nothing else.

For a service: importing optimum (and with it torch and transformers) costs ~500 MB of
memory before the model is loaded; onnxruntime and tokenizers cost ~50 MB. This module never
imports torch, transformers or optimum (a test checks `sys.modules`), so it runs any ONNX
variant folder that slimformer wrote (model.onnx + tokenizer.json + config.json).

    from slimformer.serving.lean import LeanOnnxVariant
    predictor = LeanOnnxVariant.load(Path("outputs/minilm-clinc-onnx-int8"), "int8", threads=2)
    predictor.predict(["what's my balance"])  # -> ["balance"]
    predictor.predict("  ")                   # -> ["oos"]: no words, no intent
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

from slimformer.errors import fail
from slimformer.files import read_json
from slimformer.models.onnx_files import onnx_file, quantizes_per_batch
from slimformer.serving.variant import Variant, check_texts

DEFAULT_MAX_LENGTH = 128  # as the transformers-based variants truncate


def read_optional_json(path: Path) -> dict[str, Any]:
    """A JSON object beside the model, or {} where the folder has none."""
    content = read_json(path) if path.is_file() else {}
    if not isinstance(content, dict):
        fail(f"{path} must hold a JSON object, not a {type(content).__name__}")
    return content


def label_list(id2label: Any, path: Path) -> list[str] | None:
    """id2label as a list by id; gaps or a wrong type are one line naming the file."""
    if not id2label:
        return None
    if not isinstance(id2label, dict):
        fail(f"{path}: id2label must map ids to label names")
    missing = [i for i in range(len(id2label)) if str(i) not in id2label]
    if missing:
        fail(f"{path}: id2label has no label for id {missing[0]} (ids must run 0.."
             f"{len(id2label) - 1})")
    return [str(id2label[str(i)]) for i in range(len(id2label))]


def load_tokenizer(folder: Path, max_length: int) -> Tokenizer:
    """The fast tokenizer from tokenizer.json, padding and truncating like `AutoTokenizer`."""
    path = folder / "tokenizer.json"
    if not path.is_file():
        fail(f"no tokenizer.json in {folder}: the lean predictor needs a fast tokenizer "
             "(save one with AutoTokenizer.from_pretrained(..., use_fast=True).save_pretrained)")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as err:  # tokenizers raises its own Exception for any damage
        fail(f"{path} is not a readable tokenizer ({str(err).splitlines()[0][:120]}); save it "
             "again with AutoTokenizer.save_pretrained", err)
    settings = read_optional_json(folder / "tokenizer_config.json")
    pad_token = settings.get("pad_token") or "[PAD]"
    if isinstance(pad_token, dict):  # older tokenizer_config.json files store an AddedToken
        pad_token = pad_token.get("content", "[PAD]")
    pad_id = tokenizer.token_to_id(pad_token)
    if pad_id is None:
        fail(f"pad token {pad_token!r} is not in {path}")
    limit = settings.get("model_max_length") or max_length
    if isinstance(limit, bool) or not isinstance(limit, int | float) or limit < 1:
        fail(f"{folder / 'tokenizer_config.json'}: model_max_length must be a positive number, "
             f"got {limit!r:.60}")
    tokenizer.enable_truncation(max_length=min(max_length, int(min(limit, 1 << 30))))
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
    return tokenizer


def open_session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime raises its own Fail/InvalidGraph types
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        fail(f"{path} is not a loadable ONNX model (truncated or not ONNX?): {reason[:200]}")


class LeanOnnxVariant(Variant):
    kind = "onnx-lean"

    def __init__(self, session: onnxruntime.InferenceSession, tokenizer: Tokenizer,
                 labels: list[str] | None, name: str, path: Path | None = None):
        super().__init__(name, path)
        self.session = session
        self.tokenizer = tokenizer
        self._labels = labels
        self.input_names = [i.name for i in session.get_inputs()]
        known = {"input_ids", "attention_mask", "token_type_ids"}
        unknown = sorted(set(self.input_names) - known)
        if unknown:
            fail(f"ONNX model in {path} takes inputs the lean predictor cannot build: "
                 f"{', '.join(unknown)}")

    @classmethod
    def detect(cls, folder: Path) -> bool:
        return (folder / "tokenizer.json").is_file() and any(folder.glob("*.onnx"))

    @classmethod
    def load(cls, folder: Path, name: str, threads: int,
             max_length: int = DEFAULT_MAX_LENGTH) -> LeanOnnxVariant:
        from slimformer.checks import check_count

        if not isinstance(folder, str | Path):
            fail(f"LeanOnnxVariant.load() needs a folder, got {folder!r:.60}")
        check_count("threads", threads)
        check_count("max_length", max_length)
        folder = Path(folder)
        if not folder.is_dir():
            fail(f"model folder not found: {folder}")
        labels = label_list(read_optional_json(folder / "config.json").get("id2label"),
                            folder / "config.json")
        tokenizer = load_tokenizer(folder, max_length)
        session = open_session(onnx_file(folder), threads)
        return cls(session, tokenizer, labels, name, folder)

    @property
    def labels(self) -> list[str] | None:
        return self._labels

    @cached_property
    def batch_dependent(self) -> bool:
        return self.path is not None and quantizes_per_batch(onnx_file(self.path))

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        # One text (the serving case) skips encode_batch's thread pool hand-off.
        if len(texts) == 1:
            encodings = [self.tokenizer.encode(texts[0])]
        else:
            encodings = self.tokenizer.encode_batch(texts)
        arrays = {"input_ids": [e.ids for e in encodings],
                  "attention_mask": [e.attention_mask for e in encodings],
                  "token_type_ids": [e.type_ids for e in encodings]}
        return {name: np.asarray(arrays[name], dtype=np.int64) for name in self.input_names}

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        return self.session.run(None, self.encode(texts))[0].astype(np.float32, copy=False)
