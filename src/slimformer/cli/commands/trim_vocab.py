"""Trim a classifier's vocabulary to the word pieces its training data uses.

    slimformer trim-vocab --config recipes/trim_vocab_minilm_offline.yaml
    slimformer trim-vocab --model outputs/student-3l --data_file ../shared/data/clinc150

Writes --output_dir (default MODEL-trimmed): the model with only the kept embedding rows, and a
tokenizer (tokenizer.json, vocab.txt) that AutoTokenizer, pipeline() and the lean predictor
load as they are. Kept: special tokens, every token of the training split, and single
characters (--keep_characters) with their ## forms, so unseen words still tokenize.
slimformer.json records what was kept and how much of the test split falls outside it.
Compress the result like any model (`slimformer compress --model OUTPUT`).
"""

from __future__ import annotations

from slimformer.compression.vocab import TrimVocabArguments
from slimformer.data.args import DataArguments

ARGUMENTS = (TrimVocabArguments, DataArguments)


def main(argv: list[str] | None = None) -> None:
    import json

    from slimformer.cli.config import parse_args
    from slimformer.errors import fail

    args, data_args = parse_args(ARGUMENTS, argv, description=__doc__)
    if not args.model:
        fail("no model given: pass --model path/to/classifier-folder")
    from slimformer.compression.vocab import trim_vocabulary
    from slimformer.provenance import read_provenance

    output = trim_vocabulary(args, data_args)
    print(f"wrote {output}")
    print(json.dumps(read_provenance(output)["steps"][-1]["settings"], indent=2))
