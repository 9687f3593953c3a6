"""Nearest words in a teacher's input-embedding space, for the "neighbour" augmentation.

TinyBERT replaces words with their GloVe neighbours; GloVe is not on the machine, but the
teacher's own word-piece embeddings are, and they place words it treats alike close together.
Only words of the training split that are one word piece of their own take part, so every
replacement is a real word of the domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
from transformers import PreTrainedModel

NEIGHBOURS = 8  # how many nearest words each word may be replaced by


def whole_word_ids(tokenizer: Any, texts: Iterable[str]) -> dict[str, int]:
    """Lower-cased words of `texts` that the tokenizer reads as one token, with its id."""
    words = sorted({w.lower() for text in texts for w in str(text).split() if w.isalpha()})
    ids = {}
    for word, encoded in zip(words, tokenizer(words, add_special_tokens=False)["input_ids"]):
        if len(encoded) == 1:
            ids[word] = encoded[0]
    return ids


def embedding_neighbours(model: PreTrainedModel, tokenizer: Any, texts: Iterable[str],
                         k: int = NEIGHBOURS) -> dict[str, list[str]]:
    """Each whole word of `texts` -> its `k` nearest such words by cosine similarity of the
    model's input embeddings (itself left out)."""
    ids = whole_word_ids(tokenizer, texts)
    if len(ids) < 2:
        return {}
    words = list(ids)
    table = model.get_input_embeddings().weight.detach().float().cpu().numpy()
    vectors = table[[ids[w] for w in words]]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
    k = min(k, len(words) - 1)
    found: dict[str, list[str]] = {}
    for start in range(0, len(words), 1024):  # bounded memory for large vocabularies
        similarity = vectors[start:start + 1024] @ vectors.T
        for row in range(similarity.shape[0]):
            similarity[row, start + row] = -np.inf
        nearest = np.argsort(-similarity, axis=1)[:, :k]
        for row, order in enumerate(nearest):
            found[words[start + row]] = [words[j] for j in order]
    return found
