"""Search distillation hyperparameters with Optuna, then train the student with the best ones.

    python recipes/search.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer search ...`: this script hands its arguments to that command;
`python recipes/search.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["search", *sys.argv[1:]])
