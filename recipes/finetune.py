"""Fine-tune a sequence-classification checkpoint on CLINC150 (how a teacher is made).

    python recipes/finetune.py --config recipes/finetune_minilm_offline.yaml
"""

from transformers import TrainingArguments

from slimformer.args import DataArguments, ModelArguments
from slimformer.config import parse_args
from slimformer.errors import run_recipe
from slimformer.train import finetune

ARGUMENTS = (ModelArguments, DataArguments, TrainingArguments)


def main(argv: list[str] | None = None) -> None:
    model_args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    metrics = finetune(model_args.model_name_or_path, data_args, training_args)
    if training_args.process_index == 0:
        print({k: round(v, 4) for k, v in metrics.items() if "accuracy" in k or "recall" in k})


if __name__ == "__main__":
    run_recipe(main)
