"""Distil a CLINC150 teacher into a smaller student (or, without a teacher, fine-tune it).

    python recipes/distill.py --config recipes/distill_minilm_offline.yaml
    python recipes/distill.py --config recipes/distill_book.yaml      # needs the Hub

Writes the student (safetensors, tokenizer, config with id2label), metrics.json and
slimformer.json to --output_dir; an interrupted run resumes from its last checkpoint.

The same as `slimformer distill`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["distill", *sys.argv[1:]])
