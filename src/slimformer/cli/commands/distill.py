"""Distil a CLINC150 teacher into a smaller student (or, without a teacher, fine-tune it).

    slimformer distill --config recipes/distill_minilm_offline.yaml
    slimformer distill --config recipes/distill_book.yaml      # needs the Hub

Writes the student (safetensors, tokenizer, config with id2label), metrics.json and
slimformer.json to --output_dir; an interrupted run resumes from its last checkpoint.
"""

from __future__ import annotations

from slimformer.data.args import DataArguments
from slimformer.training.args import DistillArguments, DistillationTrainingArguments

ARGUMENTS = (DistillArguments, DataArguments, DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    from slimformer.cli.config import parse_args
    from slimformer.training.distill_run import distill

    args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    metrics = distill(args, data_args, training_args)
    if training_args.process_index == 0:
        print({k: round(v, 4) for k, v in metrics.items() if "accuracy" in k or "recall" in k})
