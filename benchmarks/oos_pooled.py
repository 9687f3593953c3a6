"""The distance-to-centroids score on two features: the logits (what slimformer stores and
every variant kind applies) against the pooled embedding (Podolskiy et al. 2021's choice).

    python benchmarks/oos_pooled.py --data_file ../shared/data/clinc150/data_oos_plus.json \
        --models teacher=outputs/optimize-full/teacher student=... --output pooled.md

PyTorch BERT-family models only (the pooler's output is read with a forward hook). Each
feature's rule is fitted as `--fallback_score mahalanobis` fits it: means and shrunk shared
covariance on validation's in-scope rows, threshold on out-of-fold distances with the same
in-scope budget. Accuracy only: no timing, so it may run beside other work.
"""

from __future__ import annotations

import numpy as np
import torch
from oos_scores import arguments, write_table  # the sibling script (benchmarks/)
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from slimformer.data.args import DataArguments
from slimformer.data.dataset import load_data
from slimformer.data.metrics import clinc_scores
from slimformer.serving.centroids import Centroids, fit_centroids, out_of_fold_distances
from slimformer.serving.fallback import threshold_within


def features(folder: str, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The logits and the pooled embedding of each text."""
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    pooled: list[torch.Tensor] = []
    model.base_model.pooler.register_forward_hook(lambda _m, _i, out: pooled.append(out))
    logits = []
    with torch.inference_mode():
        for start in range(0, len(texts), 128):
            batch = tokenizer(texts[start:start + 128], padding=True, truncation=True,
                              max_length=128, return_tensors="pt")
            logits.append(model(**batch).logits)
    return torch.cat(logits).numpy(), torch.cat(pooled).numpy()


def rows_for(spec: str, dataset, max_drop: float) -> list[str]:
    name, folder = spec.split("=", 1)
    found = {split: features(folder, dataset[split]["text"]) for split in ("validation", "test")}
    labels = {split: np.asarray(dataset[split]["intent"]) for split in found}
    predicted = {split: found[split][0].argmax(-1) for split in found}
    oos = dataset["validation"].features["intent"].names.index("oos")
    rows = []
    for column, feature in ((0, "logits"), (1, "pooled embedding")):
        # as fit_rule fits mahalanobis, with the model's own answers (argmax of its logits)
        held_out = -out_of_fold_distances(found["validation"][column], labels["validation"], oos)
        threshold = threshold_within(held_out, predicted["validation"], labels["validation"],
                                     oos, max_drop)
        centroids = fit_centroids(found["validation"][column], labels["validation"], oos)
        values = {"validation": held_out,
                  "test": -Centroids.from_stored(centroids).nearest_distance(found["test"][column])}
        cells = []
        for split in ("validation", "test"):
            ids = np.where(values[split] < threshold, oos, predicted[split])
            scores = clinc_scores(ids, labels[split], oos)
            cells += [f"{100 * scores[k]:.2f}" for k in ("accuracy", "in_scope_accuracy",
                                                          "oos_recall")]
        rows.append(f"| {name} | {feature} | " + " | ".join(cells) + " |")
    return rows


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], "--models", "NAME=FOLDER")
    torch.set_num_threads(2)
    dataset = load_data(DataArguments(data_file=args.data_file))
    rows = [row for spec in args.models for row in rows_for(spec, dataset, args.max_in_scope_drop)]
    write_table(args.output, "centroids of", " (out-of-fold)", rows)


if __name__ == "__main__":
    main()
