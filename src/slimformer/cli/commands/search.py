"""Search distillation hyperparameters with Optuna, then train the student with the best ones.

    slimformer search --config recipes/search_minilm_offline.yaml
    # several workers, one study (same --storage URL, e.g. postgresql://... across machines):
    slimformer search --config ... --storage sqlite:///outputs/search/study.db &

The study resumes from its storage; best_params.yaml (accepted by `slimformer distill`), a trial
table and Optuna's history and importance plots are written to --search_dir.
"""

from __future__ import annotations

from slimformer.data.args import DataArguments
from slimformer.training.args import DistillArguments, DistillationTrainingArguments
from slimformer.training.search import SearchArguments

ARGUMENTS = (SearchArguments, DistillArguments, DataArguments, DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
    import copy

    from slimformer.cli.config import parse_args
    from slimformer.training.distill_run import distill
    from slimformer.training.search import best_config, run_search, write_search_outputs

    search, args, data_args, training_args = parse_args(ARGUMENTS, argv, description=__doc__)
    study = run_search(search, args, data_args, training_args)
    main_process = training_args.process_index == 0
    if main_process:  # every rank reads the study; only the main one writes
        config = best_config(study, args, data_args, training_args)
        paths = write_search_outputs(study, config, search.search_dir)
        print(f"best validation accuracy {study.best_value:.4f} with {study.best_trial.params}")
        print(f"wrote {', '.join(str(p) for p in paths.values())}")
    if search.final_run:
        best = copy.deepcopy(training_args)
        for key, value in study.best_trial.params.items():  # as Trainer sets trial params
            setattr(best, key, value)
        metrics = distill(args, data_args, best)
        if main_process:
            print({k: round(v, 4) for k, v in metrics.items() if "accuracy" in k})
