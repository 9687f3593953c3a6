"""Fine-tune a sequence-classification checkpoint on CLINC150 (how a teacher is made).

    slimformer finetune --config recipes/finetune_minilm_offline.yaml
"""

from __future__ import annotations

from slimformer.data.args import DataArguments
from slimformer.training.args import FinetuneTrainingArguments, ModelArguments

ARGUMENTS = (ModelArguments, DataArguments, FinetuneTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    from slimformer.cli.config import parse_args
    from slimformer.training.finetune import finetune

    model_args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    metrics = finetune(model_args.model_name_or_path, data_args, training_args)
    if training_args.process_index == 0:
        print({k: round(v, 4) for k, v in metrics.items() if "accuracy" in k or "recall" in k})
