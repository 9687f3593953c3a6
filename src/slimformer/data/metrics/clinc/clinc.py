"""CLINC150 metrics as an `evaluate` module: accuracy, in-scope accuracy, out-of-scope recall.

Loaded from this folder with `evaluate.load(path)`, so it works offline (the Hub's
`accuracy` script does not).
"""

import datasets
import evaluate
import numpy as np

_DESCRIPTION = """
accuracy: share of all queries classified correctly.
in_scope_accuracy: accuracy over queries whose true intent is not out-of-scope.
oos_recall: share of out-of-scope queries predicted as out-of-scope (Larson et al., 2019).
"""
_CITATION = """\
@inproceedings{larson-etal-2019-evaluation,
  title = "An Evaluation Dataset for Intent Classification and Out-of-Scope Prediction",
  author = "Larson, Stefan and others",
  booktitle = "EMNLP-IJCNLP",
  year = "2019",
}
"""
_KWARGS = "predictions, references: lists of label ids; oos_id: the out-of-scope id (42)."


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class Clinc(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
        )

    def _compute(self, predictions, references, oos_id=42):
        predictions = np.asarray(predictions)
        references = np.asarray(references)
        correct = predictions == references
        in_scope = references != oos_id
        oos = ~in_scope
        nan = float("nan")
        return {
            "accuracy": float(correct.mean()) if len(correct) else nan,
            "in_scope_accuracy": float(correct[in_scope].mean()) if in_scope.any() else nan,
            "oos_recall": float((predictions[oos] == oos_id).mean()) if oos.any() else nan,
        }
