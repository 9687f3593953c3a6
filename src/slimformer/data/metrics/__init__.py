"""Metrics: accuracy, in-scope accuracy and out-of-scope recall (CLINC150's) via `evaluate`."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import Any

import evaluate
import numpy as np

from slimformer.data.clinc import oos_id as clinc_oos_id

NO_OOS = -1  # no label has this id: every row is in scope, OOS recall is NaN


@lru_cache(maxsize=1)
def clinc_metric() -> evaluate.EvaluationModule:
    with resources.as_file(resources.files("slimformer.data") / "metrics" / "clinc") as folder:
        return evaluate.load(str(folder))


def clinc_scores(predictions: Any, references: Any, oos_id: int | None = None,
                 ) -> dict[str, float]:
    """Scores with `oos_id` as out of scope (default CLINC150's; NO_OOS for data without)."""
    return clinc_metric().compute(
        predictions=np.asarray(predictions), references=np.asarray(references),
        oos_id=clinc_oos_id() if oos_id is None else oos_id,
    )


def metrics_for(oos_id: int | None) -> Callable[[Any], dict[str, float]]:
    """Trainer's compute_metrics for data whose out-of-scope label is `oos_id` (None: none)."""
    def compute(eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred
        if isinstance(logits, tuple):
            logits = logits[0]
        return clinc_scores(np.argmax(logits, axis=-1), labels,
                            NO_OOS if oos_id is None else oos_id)

    return compute


compute_metrics = metrics_for(clinc_oos_id())
