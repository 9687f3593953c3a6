"""Distil a CLINC150 teacher into a smaller student (or, without a teacher, fine-tune it).

    python recipes/distill.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer distill ...`: this script hands its arguments to that command;
`python recipes/distill.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["distill", *sys.argv[1:]])
