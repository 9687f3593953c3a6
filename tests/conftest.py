"""Shared fixtures: the offline CLINC150 copy and tiny models built from a config."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
CLINC_DIR = REPO.parent / "shared" / "data" / "clinc150"


@pytest.fixture(scope="session")
def clinc_dir() -> Path:
    if not (CLINC_DIR / "data_oos_plus.json").is_file():
        pytest.skip(f"offline CLINC150 copy not found at {CLINC_DIR}")
    return CLINC_DIR


@pytest.fixture(scope="session")
def clinc(clinc_dir):
    from slimformer.data.clinc import load_clinc

    return load_clinc(clinc_dir / "data_oos_plus.json")


@pytest.fixture(scope="session")
def tokenizer():
    from slimformer.models.loading import load_tokenizer

    return load_tokenizer("minilm")


def tiny_bert(**overrides):
    """A 2-layer BERT classifier with CLINC150's labels (random weights, seeded)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    from slimformer.data.clinc import label_config

    torch.manual_seed(0)
    settings = {"vocab_size": 30522, "hidden_size": 32, "num_hidden_layers": 2,
                "num_attention_heads": 4, "intermediate_size": 64,
                "max_position_embeddings": 128, **label_config()}
    config = BertConfig(**{**settings, **overrides})
    return BertForSequenceClassification(config).eval()


def tiny_distilbert(**overrides):
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from slimformer.data.clinc import label_config

    torch.manual_seed(0)
    settings = {"vocab_size": 30522, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64,
                "max_position_embeddings": 128, **label_config()}
    config = DistilBertConfig(**{**settings, **overrides})
    return DistilBertForSequenceClassification(config).eval()


@pytest.fixture
def tiny_bert_folder(tmp_path, tokenizer) -> Path:
    folder = tmp_path / "tiny-bert"
    tiny_bert().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
