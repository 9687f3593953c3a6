"""Search distillation hyperparameters with Optuna, then train the student with the best ones.

    python recipes/search.py --config recipes/search_minilm_offline.yaml
    # several workers, one study (same --storage URL, e.g. postgresql://... across machines):
    python recipes/search.py --config ... --storage sqlite:///outputs/search/study.db &

The study resumes from its storage; best_params.yaml (accepted by recipes/distill.py), a trial
table and Optuna's history and importance plots are written to --search_dir.
"""

import copy

from slimformer.args import DataArguments, DistillArguments
from slimformer.config import parse_args
from slimformer.distill import DistillationTrainingArguments
from slimformer.distill_run import distill
from slimformer.errors import run_recipe
from slimformer.search import SearchArguments, best_config, run_search, write_search_outputs

ARGUMENTS = (SearchArguments, DistillArguments, DataArguments, DistillationTrainingArguments)


def main(argv: list[str] | None = None) -> None:
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


if __name__ == "__main__":
    run_recipe(main)
