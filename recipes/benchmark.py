"""Benchmark classifier variants side by side on the CLINC150 test split.

    python recipes/benchmark.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer benchmark ...`: this script hands its arguments to that command;
`python recipes/benchmark.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["benchmark", *sys.argv[1:]])
