"""Publish every variant of a benchmark run to the Hugging Face Hub, each with its model card.

    python recipes/push.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer push ...`: this script hands its arguments to that command;
`python recipes/push.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["push", *sys.argv[1:]])
