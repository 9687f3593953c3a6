"""The whole chain in one command: the fastest variant within an accuracy budget.

    python recipes/optimize.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer optimize ...`: this script hands its arguments to that command;
`python recipes/optimize.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["optimize", *sys.argv[1:]])
