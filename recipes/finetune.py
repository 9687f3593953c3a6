"""Fine-tune a sequence-classification checkpoint on CLINC150 (how a teacher is made).

    python recipes/finetune.py --config recipes/CONFIG.yaml [--ARGUMENT VALUE ...]

The same as `slimformer finetune ...`: this script hands its arguments to that command;
`python recipes/finetune.py --help` lists them.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["finetune", *sys.argv[1:]])
