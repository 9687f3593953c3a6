"""Search distillation hyperparameters with Optuna, then train the student with the best ones.

    python recipes/search.py --config recipes/search_minilm_offline.yaml
    # several workers, one study (same --storage URL, e.g. postgresql://... across machines):
    python recipes/search.py --config ... --storage sqlite:///outputs/search/study.db &

The study resumes from its storage; best_params.yaml (accepted by `slimformer distill`), a trial
table and Optuna's history and importance plots are written to --search_dir.

The same as `slimformer search`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["search", *sys.argv[1:]])
