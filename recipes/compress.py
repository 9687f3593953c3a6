"""Quantize and export a sequence classifier: every compressed variant, loadable and benchmarked.

    python recipes/compress.py --config recipes/compress_minilm_offline.yaml
    python recipes/compress.py --model outputs/minilm-clinc --output_dir outputs/compressed \
        --data_file ../shared/data/clinc150 --benchmark

From the folder X it writes, under --output_dir (each with slimformer.json):
  X-torch-int8        PyTorch dynamic int8 (safetensors, reloads without pickle)
  X-onnx              ONNX FP32 export
  X-onnx-O2           graph-optimized (fused) ONNX, kept only if measurably faster than X-onnx
  X-onnx-int8         ONNX dynamic int8 (preset from this CPU's flags)
  X-onnx-int8-static  ONNX static int8, calibrated on --calibration_rows training rows
  X-onnx-O2-int8      optimized, then dynamic int8 (kept only if faster than X-onnx-int8)
With --benchmark, a side-by-side report against X lands in OUTPUT_DIR/benchmark.

The same as `slimformer compress`: this script only hands its arguments to the command.
"""

import sys

from slimformer.cli.main import main

if __name__ == "__main__":
    main(["compress", *sys.argv[1:]])
