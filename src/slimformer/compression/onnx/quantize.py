"""ONNX int8 with ORTQuantizer: dynamic and static, preset from the CPU's flags.

Quantizing a graph that `ORTOptimizer` already fused fails inside ONNX Runtime's quantizer,
because ONNX's own shape inference cannot type the outputs of com.microsoft operators.
`quantize_dynamic` and `quantize_static` first run ONNX Runtime's symbolic shape inference,
which knows those operators, so optimize-then-quantize works like quantizing a plain export."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.compression.onnx.graph import copy_side_files, head_matmuls, integer_op_counts
from slimformer.errors import fail
from slimformer.files import staged_folder
from slimformer.models.onnx_files import ONNX_NAME, load_onnx_model, onnx_file, op_counts
from slimformer.provenance import write_provenance

CALIBRATION_METHODS = ("minmax", "entropy", "percentiles")


MIN_CALIBRATION_ROWS = 16


# CPU flag -> Optimum preset, best first. aarch64 machines report "asimd" (arm64 preset).
PRESET_FLAGS = (("avx512_vnni", "avx512_vnni"), ("avx512f", "avx512"), ("avx2", "avx2"),
                ("asimd", "arm64"))


PRESET_NEEDS = {"avx512_vnni": "avx512_vnni", "avx512": "avx512f", "avx2": "avx2",
                "arm64": "asimd"}


def cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_preset(preset: str = "auto", flags: set[str] | None = None) -> str:
    """The AutoQuantizationConfig preset for this CPU; an explicit one must match its flags."""
    flags = cpu_flags() if flags is None else flags
    if preset == "auto":
        for flag, name in PRESET_FLAGS:
            if flag in flags:
                return name
        fail("this CPU has none of avx512_vnni, avx512f, avx2 or asimd (arm64): no int8 "
             "preset fits it; pass --preset explicitly to quantize anyway")
    if preset not in PRESET_NEEDS:
        fail(f"unknown quantization preset {preset!r}; choose auto or "
             f"{', '.join(PRESET_NEEDS)}")
    if PRESET_NEEDS[preset] not in flags:
        best = next((name for flag, name in PRESET_FLAGS if flag in flags), None)
        hint = f"; this CPU fits preset {best!r} (or pass auto)" if best else ""
        fail(f"preset {preset!r} needs the {PRESET_NEEDS[preset]} instruction set, which this "
             f"CPU lacks{hint}")
    return preset


def quantization_config(preset: str, is_static: bool, per_channel: bool,
                        exclude: list[str] | None = None) -> Any:
    from optimum.onnxruntime import AutoQuantizationConfig
    from optimum.onnxruntime.configuration import QuantType

    config = getattr(AutoQuantizationConfig, preset)(is_static=is_static,
                                                     per_channel=per_channel,
                                                     nodes_to_exclude=exclude or [])
    if preset == "avx2" and not is_static:
        # Optimum's avx2 preset stores weights as uint8, which ONNX Runtime multiplies in its
        # widening u8u8 kernel; int8 weights take the u8s8 kernel (VPMADDUBSW), as the
        # avx512 presets do. On an avx2-only AMD EPYC the 4-layer student's fused int8 ran
        # 10-12% faster (docs/optimize.md). VPMADDUBSW adds pairs of u8 x s8 products into
        # int16 and saturates with full-range weights: the real models' logits moved twice as
        # far from the float graph's (0.055 against 0.030 on the 4-layer student), and a tiny
        # model with large weights answered garbage. 7-bit weights (reduce_range) cannot
        # overflow it and stay as close to float as u8u8 (ONNX Runtime's guide advises them
        # for u8s8 without VNNI).
        config.weights_dtype = QuantType.QInt8
        config.reduce_range = True
    return config


def with_inferred_types(folder: Path, stage: Path) -> Path:
    """A copy of the folder's graph with every tensor typed (fused ops included), for ORTQuantizer.

    ONNX Runtime's quantizer needs each weight input's type; ONNX shape inference cannot give
    the outputs of fused com.microsoft operators one, ONNX Runtime's symbolic inference can.
    """
    import onnx
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    model = load_onnx_model(onnx_file(folder))
    try:
        typed = SymbolicShapeInference.infer_shapes(model, auto_merge=True)
    except Exception as err:  # its failures are asserts and KeyErrors without context
        fail(f"cannot infer tensor types in {folder} before quantizing: {err!r:.200}")
    onnx.save(typed, str(stage / ONNX_NAME))
    copy_side_files(folder, stage)  # ORTQuantizer saves the config it finds beside the graph
    return stage


def run_quantizer(typed_folder: Path, stage: Path, config: Any,
                  ranges: dict[str, Any] | None = None) -> None:
    from optimum.onnxruntime import ORTQuantizer

    quantizer = ORTQuantizer.from_pretrained(typed_folder, file_name=ONNX_NAME)
    quantizer.quantize(config, save_dir=stage, calibration_tensors_range=ranges)
    (stage / "model_quantized.onnx").rename(stage / ONNX_NAME)


def check_not_quantized(source: Path) -> None:
    counts = op_counts(onnx_file(source))
    if integer_op_counts(counts):
        fail(f"{source} is already quantized ({', '.join(integer_op_counts(counts))}); "
             "quantize its float source instead")


def quantize_dynamic(source: str | Path, output: str | Path, preset: str = "auto",
                     per_channel: bool = True, overwrite: bool = False,
                     float_head: bool = False) -> dict[str, Any]:
    """Dynamic int8 (weights int8, activations quantized on the fly) of a plain or fused graph;
    `float_head` keeps the classification head's matrix products in float."""
    source = Path(source)
    check_not_quantized(source)
    preset = choose_preset(preset)
    exclude = head_matmuls(load_onnx_model(onnx_file(source))) if float_head else []
    if float_head and not exclude:
        fail(f"{source}: no classification head found between the encoder and the logits "
             "(a MatMul or Gemm reached from the outputs): quantize it whole (int8)")
    config = quantization_config(preset, is_static=False, per_channel=per_channel,
                                 exclude=exclude)
    with staged_folder(output, overwrite, step="onnx-quantize-dynamic") as stage, \
            tempfile.TemporaryDirectory() as tmp:
        run_quantizer(with_inferred_types(source, Path(tmp)), stage, config)
        copy_side_files(source, stage, overwrite=False)
        settings = quantization_settings(preset, config, stage)
        write_provenance(stage, "onnx-quantize-dynamic", settings, source=source)
    return settings


def quantization_settings(preset: str, config: Any, stage: Path) -> dict[str, Any]:
    return {"preset": preset, "per_channel": config.per_channel,
            **({"float_nodes": config.nodes_to_exclude} if config.nodes_to_exclude else {}),
            "reduce_range": config.reduce_range, "format": config.format.name,
            "weights": config.weights_dtype.name, "activations": config.activations_dtype.name,
            "integer_ops": integer_op_counts(op_counts(stage / ONNX_NAME))}


def calibration_dataset(folder: Path, texts: list[str], max_length: int, input_names: list[str]):
    """Tokenized calibration rows, padded to one fixed length, holding only the graph's inputs."""
    from datasets import Dataset

    from slimformer.models.loading import load_folder_tokenizer

    tokenizer = load_folder_tokenizer(folder)
    encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=max_length,
                        return_tensors="np")
    return Dataset.from_dict({name: encoded[name].astype(np.int64) for name in input_names})


def calibration_config(method: str, dataset: Any) -> Any:
    from optimum.onnxruntime import AutoCalibrationConfig

    if method not in CALIBRATION_METHODS:
        fail(f"unknown calibration method {method!r}; choose one of "
             f"{', '.join(CALIBRATION_METHODS)}")
    return getattr(AutoCalibrationConfig, method)(dataset)


def graph_inputs(path: Path) -> list[str]:
    model = load_onnx_model(path)
    initializers = {init.name for init in model.graph.initializer}
    return [i.name for i in model.graph.input if i.name not in initializers]


def quantize_static(source: str | Path, output: str | Path, texts: list[str],
                    method: str = "minmax", max_length: int = 64, preset: str = "auto",
                    per_channel: bool = True, batch_size: int = 16,
                    overwrite: bool = False) -> dict[str, Any]:
    """Static int8: activation ranges calibrated on `texts` (training rows) beforehand."""
    from optimum.onnxruntime import ORTQuantizer

    source = Path(source)
    check_not_quantized(source)
    if len(texts) < MIN_CALIBRATION_ROWS:
        fail(f"calibration set has {len(texts)} rows; static quantization needs at least "
             f"{MIN_CALIBRATION_ROWS} (a few hundred is typical)")
    preset = choose_preset(preset)
    config = quantization_config(preset, is_static=True, per_channel=per_channel)
    with staged_folder(output, overwrite, step="onnx-quantize-static") as stage, \
            tempfile.TemporaryDirectory() as tmp:
        typed = with_inferred_types(source, Path(tmp))
        dataset = calibration_dataset(source, texts, max_length, graph_inputs(typed / ONNX_NAME))
        quantizer = ORTQuantizer.from_pretrained(typed, file_name=ONNX_NAME)
        ranges = quantizer.fit(dataset, calibration_config(method, dataset),
                               onnx_augmented_model_name=Path(tmp) / "augmented.onnx",
                               operators_to_quantize=config.operators_to_quantize,
                               batch_size=batch_size)
        quantizer.quantize(config, save_dir=stage, calibration_tensors_range=ranges)
        (stage / "model_quantized.onnx").rename(stage / ONNX_NAME)
        copy_side_files(source, stage, overwrite=False)
        settings = {**quantization_settings(preset, config, stage), "calibration": method,
                    "calibration_rows": len(texts), "max_length": max_length}
        write_provenance(stage, "onnx-quantize-static", settings, source=source)
    return settings
