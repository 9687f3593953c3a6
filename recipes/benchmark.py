"""Benchmark classifier variants side by side on the CLINC150 test split.

    python recipes/benchmark.py --config recipes/benchmark_minilm_offline.yaml
    python recipes/benchmark.py --data_file ../shared/data/clinc150 \
        --variants fp32=outputs/minilm-clinc int8=outputs/minilm-clinc-onnx-int8

A variant is NAME=FOLDER or NAME=FOLDER@KIND (kinds: pytorch, pytorch-int8, onnx, onnx-lean).
Each variant is timed alone in a process of its own, the processes taking turns in rounds.
Writes report.json, report.md and report.png to --output_dir.

The same as `slimformer benchmark`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["benchmark", *sys.argv[1:]])
