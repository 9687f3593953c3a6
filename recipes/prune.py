"""Prune a CLINC150 classifier while fine-tuning it (optionally distilling from a teacher), then

    python recipes/prune.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer prune ...`: this script hands its arguments to that command;
`python recipes/prune.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["prune", *sys.argv[1:]])
