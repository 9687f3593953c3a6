"""Trim a classifier's vocabulary to the word pieces its training data uses.

    python recipes/trim_vocab.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer trim-vocab ...`: this script hands its arguments to that command;
`python recipes/trim_vocab.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["trim-vocab", *sys.argv[1:]])
