"""Reading a /predict request: every malformed body is a 4xx with its reason, never a 500."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slimformer.serving.serve_settings import ServeSettings

FIELDS = {"inputs", "top_k"}


class BadRequest(Exception):
    def __init__(self, status: int, error_type: str, message: str):
        super().__init__(message)
        self.status, self.error_type, self.message = status, error_type, message


@dataclass
class PredictRequest:
    texts: list[str]
    top_k: int = 0


def check_utf8(text: str, where: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:  # a lone surrogate, escaped in the JSON
        raise BadRequest(422, "validation", f"{where} is not valid Unicode ({err.reason} at "
                                            f"character {err.start})") from None


def parse_predict(body: bytes, settings: ServeSettings) -> PredictRequest:
    """The texts and top_k of a body of the form {"inputs": "text" | ["t1", ...],
    "top_k": k}."""
    try:
        content = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadRequest(422, "validation", "the body is not UTF-8 text") from None
    except json.JSONDecodeError as err:
        raise BadRequest(422, "validation", f"the body is not JSON: {err.msg} at line "
                                            f"{err.lineno}, column {err.colno}") from None
    if not isinstance(content, dict):
        raise BadRequest(422, "validation", 'the body must be a JSON object like '
                                            '{"inputs": "text"}')
    unknown = sorted(set(content) - FIELDS)
    if unknown:
        raise BadRequest(422, "validation", f"unknown field(s) {', '.join(unknown)[:200]}; "
                                            "known: inputs, top_k")
    if "inputs" not in content:
        raise BadRequest(422, "validation", 'no "inputs": give a text or a list of texts')
    inputs = content["inputs"]
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list):
        raise BadRequest(422, "validation", f'"inputs" must be a text or a list of texts, '
                                            f"got {type(inputs).__name__}")
    if not texts:
        raise BadRequest(422, "validation", '"inputs" is an empty list')
    if len(texts) > settings.max_client_batch:
        raise BadRequest(413, "payload_too_large", f"{len(texts)} texts in one request; the "
                                                   f"most is {settings.max_client_batch}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise BadRequest(422, "validation", f"input {i} is {type(text).__name__}, "
                                                "not a text")
        if len(text) > settings.max_text_chars:
            raise BadRequest(413, "payload_too_large", f"input {i} has {len(text)} "
                                                       f"characters; the most is "
                                                       f"{settings.max_text_chars}")
        check_utf8(text, f"input {i}")
    return PredictRequest(texts, top_k(content.get("top_k", 0), settings))


def top_k(value: Any, settings: ServeSettings) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value:
        raise BadRequest(422, "validation", f'"top_k" must be a whole number >= 0, got '
                                            f"{value!r}"[:200])
    if value > settings.max_top_k:
        raise BadRequest(422, "validation", f'"top_k" is {value}; the most is '
                                            f"{settings.max_top_k}")
    return value
