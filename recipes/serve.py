"""Serve a variant over HTTP (the chosen one of an optimize run with --run).

    python recipes/serve.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer serve ...`: this script hands its arguments to that command;
`python recipes/serve.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["serve", *sys.argv[1:]])
