"""Fine-tune a sequence-classification checkpoint on CLINC150 (how a teacher is made).

    python recipes/finetune.py --config recipes/finetune_minilm_offline.yaml

The same as `slimformer finetune`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["finetune", *sys.argv[1:]])
