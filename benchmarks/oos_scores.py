"""Compare the out-of-scope fallback's scores on real models: each score's rule fitted on
validation (the same in-scope budget for all), then applied to validation and test.

    python benchmarks/oos_scores.py --data_file ../shared/data/clinc150/data_oos_plus.json \
        --variants teacher=outputs/optimize-full/teacher student=... --output docs/oos.md

Writes a Markdown table: accuracy, in-scope accuracy and OOS recall per model and score, on
validation and test, with the score "auto" would keep marked. Accuracy only: no timing, so it
may run beside other work.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from slimformer.data.args import DataArguments
from slimformer.data.dataset import load_data
from slimformer.data.metrics import clinc_scores
from slimformer.serving.fallback import SCORES, best_rule, rule_for_split
from slimformer.serving.registry import load_variant


def rows_for(spec: str, dataset, data_args: DataArguments) -> list[str]:
    variant = load_variant(spec, threads=2)
    name = spec.split("=", 1)[0]
    logits = {split: variant.logits(dataset[split]["text"], progress=f"{name} {split}")
              for split in ("validation", "test")}
    labels = {split: np.asarray(dataset[split]["intent"]) for split in logits}
    rules = {score: rule_for_split(logits["validation"], dataset["validation"],
                                   DataArguments(**{**vars(data_args), "fallback_score": score}))
             for score in SCORES}
    kept = best_rule(list(rules.values())).score  # what "auto" keeps, from the same fits
    rows = []
    for score in ("none", *SCORES):
        cells = []
        rule = rules.get(score)
        for split in ("validation", "test"):
            if rule is None:
                ids = logits[split].argmax(-1)
            elif split == "validation":  # mahalanobis: out-of-fold, as its threshold was fitted
                ids = rule.predict_fitted_ids(logits[split], labels[split])
            else:
                ids = rule.predict_ids(logits[split])
            found = clinc_scores(ids, labels[split], rule.oos_id if rule else None)
            cells += [f"{100 * found[k]:.2f}" for k in ("accuracy", "in_scope_accuracy",
                                                         "oos_recall")]
        label = score + (" (auto's choice)" if score == kept else "")
        if rule is not None and score == "temperature_softmax":
            label += f", T = {rule.temperature:.3g}"
        rows.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    return rows


def arguments(description: str, models: str, help_text: str) -> argparse.Namespace:
    """The data file, the models (under `models`), the in-scope budget and the output."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data_file", required=True)
    parser.add_argument(models, nargs="+", required=True, help=help_text)
    parser.add_argument("--max_in_scope_drop", type=float, default=0.5)
    parser.add_argument("--output", type=Path, required=True)
    return parser.parse_args()


def write_table(path: Path, second: str, validation: str, rows: list[str]) -> None:
    """The Markdown table (model, `second`, three figures per split), written and printed."""
    header = (f"| model | {second} | val. acc.{validation} | val. in-scope | val. OOS recall | "
              "test acc. | test in-scope | test OOS recall |\n|---|---|---|---|---|---|---|---|")
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    print(path.read_text())


def main() -> None:
    args = arguments(__doc__.split("\n\n")[0], "--variants", "NAME=FOLDER[@KIND]")
    data_args = DataArguments(data_file=args.data_file, max_in_scope_drop=args.max_in_scope_drop)
    dataset = load_data(data_args)
    rows = [row for spec in args.variants for row in rows_for(spec, dataset, data_args)]
    write_table(args.output, "score", "", rows)


if __name__ == "__main__":
    main()
