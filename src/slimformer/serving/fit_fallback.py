"""Fitting a variant folder's out-of-scope fallback on its own validation logits: loads the
variant (any kind), so it lives apart from the rule itself (serving/fallback.py, numpy only)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slimformer.serving.fallback import FallbackRule, rule_for_split, store_rule
from slimformer.serving.registry import load_variant


def fit_and_store(folder: Path, spec_kind: str | None, validation: Any, data_args: Any,
                  threads: int = 1) -> FallbackRule | None:
    """Fit the rule on a variant folder's own validation logits and store it in its
    config.json (a folder this run made)."""
    spec = f"{Path(folder).name}={folder}" + (f"@{spec_kind}" if spec_kind else "")
    variant = load_variant(spec, threads=threads)
    rule = rule_for_split(variant.logits(validation["text"]), validation, data_args)
    store_rule(folder, rule)
    return rule
