"""Publish every variant of a benchmark run to the Hugging Face Hub, each with its model card.

    python recipes/push.py --config recipes/push_offline.yaml          # dry run, no network
    python recipes/push.py --report outputs/benchmark-minilm/report.json \
        --namespace my-user --name minilm-clinc                         # real push

Each variant of the report becomes the model repository <namespace>/<name>-<variant>, holding
its model files, a generated card (README.md: model-index, benchmark table, usage) and the
benchmark plot. --variants NAME or NAME=FOLDER pushes only those (from another folder).
The token comes from HF_TOKEN or `huggingface-cli login`, never from a flag.
--dry_run writes each repository's exact content under --dry_run_dir instead of pushing.

The same as `slimformer push`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["push", *sys.argv[1:]])
