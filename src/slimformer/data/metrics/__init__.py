"""Metrics: CLINC150's accuracy, in-scope accuracy and out-of-scope recall via `evaluate`."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

import evaluate
import numpy as np

from slimformer.data.clinc import oos_id


@lru_cache(maxsize=1)
def clinc_metric() -> evaluate.EvaluationModule:
    with resources.as_file(resources.files("slimformer.data") / "metrics" / "clinc") as folder:
        return evaluate.load(str(folder))


def clinc_scores(predictions: Any, references: Any) -> dict[str, float]:
    return clinc_metric().compute(
        predictions=np.asarray(predictions), references=np.asarray(references), oos_id=oos_id()
    )


def compute_metrics(eval_pred: Any) -> dict[str, float]:
    """For Trainer: logits and labels in, CLINC scores out."""
    logits, labels = eval_pred
    if isinstance(logits, tuple):
        logits = logits[0]
    return clinc_scores(np.argmax(logits, axis=-1), labels)
