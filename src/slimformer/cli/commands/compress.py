"""Quantize and export a sequence classifier: every compressed variant, loadable and benchmarked.

    slimformer compress --config recipes/compress_minilm_offline.yaml
    slimformer compress --model outputs/minilm-clinc --output_dir outputs/compressed \
        --data_file ../shared/data/clinc150 --benchmark

From the folder X it writes, under --output_dir (each with slimformer.json):
  X-torch-int8        PyTorch dynamic int8 (safetensors, reloads without pickle)
  X-onnx              ONNX FP32 export
  X-onnx-O2           graph-optimized (fused) ONNX, kept only if measurably faster than X-onnx
  X-onnx-int8         ONNX dynamic int8 (preset from this CPU's flags)
  X-onnx-int8-static  ONNX static int8, calibrated on --calibration_rows training rows
  X-onnx-O2-int8      optimized, then dynamic int8 (kept only if faster than X-onnx-int8)
With --benchmark, a side-by-side report against X lands in OUTPUT_DIR/benchmark.
"""

from __future__ import annotations

from slimformer.compression.args import CompressArguments
from slimformer.data.args import DataArguments
from slimformer.evaluation.settings import BenchmarkSettings

ARGUMENTS = (CompressArguments, DataArguments, BenchmarkSettings)


def main(argv: list[str] | None = None) -> None:
    import json
    from pathlib import Path

    from slimformer.cli.config import parse_args
    from slimformer.errors import fail

    args, data_args, settings = parse_args(ARGUMENTS, argv, description=__doc__)
    if not args.model:
        fail("no model given: pass --model path/to/classifier-folder")
    from slimformer.compression.variants import benchmark_specs, make_variants
    from slimformer.models.aliases import resolve_path

    made = make_variants(args, data_args, settings.threads)
    output_dir = Path(args.output_dir) if args.output_dir else resolve_path(args.model).parent
    summary = {key: {"path": str(path), "size_mb": round(sum(
        p.stat().st_size for p in path.iterdir() if p.suffix in (".onnx", ".safetensors"))
        / 1e6, 2)} for key, path in made.items()}
    print(json.dumps(summary, indent=2))
    if args.benchmark:
        from slimformer.evaluation.benchmark import benchmark_folders

        paths = benchmark_folders(benchmark_specs(args.model, made), data_args, settings,
                                  output_dir / "benchmark", "source")
        print(paths["md"].read_text().split("\n\n")[2])
