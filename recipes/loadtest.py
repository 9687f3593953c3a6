"""Closed-loop load on a running service at several concurrency levels.

    python recipes/loadtest.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer loadtest ...`: this script hands its arguments to that command;
`python recipes/loadtest.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["loadtest", *sys.argv[1:]])
