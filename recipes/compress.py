"""Quantize and export a sequence classifier: every compressed variant, loadable and benchmarked.

    python recipes/compress.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer compress ...`: this script hands its arguments to that command;
`python recipes/compress.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["compress", *sys.argv[1:]])
