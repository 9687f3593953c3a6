"""Prune a CLINC150 classifier while fine-tuning it (optionally distilling from a teacher), then
compact it into a smaller dense model, and optionally export it to int8 ONNX.

    python recipes/prune.py --config recipes/prune_minilm_hybrid_offline.yaml
    python recipes/prune.py --config recipes/prune_minilm_hybrid_offline.yaml \
        --model_name_or_path outputs/student-3l --output_dir outputs/student-3l-pruned

Writes to --output_dir: the compacted model (safetensors; load it with
`slimformer.load_pruned`, or as variant kind `pytorch-pruned`), the tokenizer, sparsity.json/.md
(heads, neurons and parameters kept per layer), schedule.png, metrics.json and slimformer.json.
With --onnx_dir it also writes the ONNX export there, and its O2-optimized int8 version to
ONNX_DIR-int8.

The same as `slimformer prune`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["prune", *sys.argv[1:]])
