"""Distil a CLINC150 teacher into a smaller student (or, without a teacher, fine-tune it).

    python recipes/distill.py --config recipes/distill_minilm_offline.yaml
    python recipes/distill.py --config recipes/distill_book.yaml      # needs the Hub

Writes the student (safetensors, tokenizer, config with id2label), metrics.json and
slimformer.json to --output_dir; an interrupted run resumes from its last checkpoint.
"""

from slimformer.args import DataArguments, DistillArguments
from slimformer.config import parse_args
from slimformer.distill import DistillationTrainingArguments
from slimformer.distill_run import distill
from slimformer.errors import run_recipe

ARGUMENTS = (DistillArguments, DataArguments, DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    metrics = distill(args, data_args, training_args)
    if training_args.process_index == 0:
        print({k: round(v, 4) for k, v in metrics.items() if "accuracy" in k or "recall" in k})


if __name__ == "__main__":
    run_recipe(main)
