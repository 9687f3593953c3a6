"""ONNX variants through Optimum: export, graph optimization, int8 quantization, inference.

Every function reads a model folder and writes a new variant folder holding `model.onnx`,
`config.json`, the tokenizer and `slimformer.json`, so `pipeline()`, `OrtVariant` and the lean
predictor all load it by its folder alone. Folders are written beside the target under a
temporary name and renamed at the end, so a failure never leaves half a variant behind.

Quantizing a graph that `ORTOptimizer` already fused (Attention, SkipLayerNormalization, ...)
fails inside ONNX Runtime's quantizer, because ONNX's own shape inference cannot type the outputs
of com.microsoft operators ("Unable to find data type for weight_name ... DefaultTensorType").
`quantize_dynamic` and `quantize_static` first run ONNX Runtime's symbolic shape inference, which
knows those operators, so optimize-then-quantize works like quantizing a plain export.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from slimformer.errors import fail
from slimformer.files import staged_folder
from slimformer.provenance import write_provenance
from slimformer.variants import Variant, check_texts, resolve_path

ONNX_NAME = "model.onnx"
# Operators that ORTOptimizer's fusions produce (what "the graph got fused" means).
FUSED_OPS = ("Attention", "MultiHeadAttention", "EmbedLayerNormalization",
             "SkipLayerNormalization", "SkipSimplifiedLayerNormalization", "LayerNormalization",
             "BiasGelu", "FastGelu", "Gelu", "BiasSoftmax", "FusedMatMul", "QAttention")
# Operators that do integer arithmetic in a quantized graph.
INTEGER_OPS = ("MatMulInteger", "QLinearMatMul", "QAttention", "DynamicQuantizeLinear",
               "QuantizeLinear", "DequantizeLinear", "QLinearAdd", "ConvInteger", "QGemm",
               "DynamicQuantizeMatMul")
LEVELS = ("O1", "O2", "O3", "O4")
CALIBRATION_METHODS = ("minmax", "entropy", "percentiles")
MIN_CALIBRATION_ROWS = 16
# CPU flag -> Optimum preset, best first. aarch64 machines report "asimd" (arm64 preset).
PRESET_FLAGS = (("avx512_vnni", "avx512_vnni"), ("avx512f", "avx512"), ("avx2", "avx2"),
                ("asimd", "arm64"))
PRESET_NEEDS = {"avx512_vnni": "avx512_vnni", "avx512": "avx512f", "avx2": "avx2",
                "arm64": "asimd"}


# ---------------------------------------------------------------------------------------------
# Folders and files




def onnx_file(folder: str | Path) -> Path:
    """The folder's ONNX model: `model.onnx`, else its only *.onnx file."""
    folder = Path(folder)
    if not folder.is_dir():
        fail(f"model folder not found: {folder}")
    if (folder / ONNX_NAME).is_file():
        return folder / ONNX_NAME
    files = sorted(folder.glob("*.onnx"))
    if not files:
        fail(f"no ONNX model (*.onnx) in {folder}")
    if len(files) > 1:
        fail(f"{folder} holds several ONNX files ({', '.join(p.name for p in files)}); "
             f"keep one or name it {ONNX_NAME}")
    return files[0]


def load_onnx_model(path: Path) -> Any:
    """The parsed ONNX graph; a truncated or non-ONNX file gets a one-line error naming it."""
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as err:  # protobuf's DecodeError, onnx's ValidationError, OSError...
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        fail(f"{path} is not a valid ONNX model (truncated or not ONNX?): {reason[:200]}")
    return model


def op_counts(path: str | Path) -> dict[str, int]:
    """How many nodes of each operator type the graph holds."""
    model = load_onnx_model(Path(path))
    return dict(Counter(node.op_type for node in model.graph.node))


def fused_op_counts(counts: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in counts.items() if op in FUSED_OPS}


def integer_op_counts(counts: dict[str, int]) -> dict[str, int]:
    return {op: n for op, n in counts.items() if op in INTEGER_OPS}


# ---------------------------------------------------------------------------------------------
# Export


def load_source_model(source: Path) -> tuple[Any, Any]:
    """A PyTorch classifier and its tokenizer from a folder (or the `minilm` alias)."""
    from slimformer.torch_variant import load_classifier_folder, load_folder_tokenizer

    if not source.is_dir():
        fail(f"model folder not found: {source}")
    if not (source / "config.json").is_file():
        fail(f"no model in {source}: config.json is missing")
    if (source / "slimformer-int8.json").is_file():
        fail(f"{source} is a PyTorch int8 variant; export the float model it came from")
    model = load_classifier_folder(source)
    try:
        tokenizer = load_folder_tokenizer(source)
    except (OSError, ValueError) as err:
        fail(f"no tokenizer in {source}: {str(err).splitlines()[0]}")
    return model, tokenizer


def export_onnx(source: str | Path, output: str | Path, opset: int | None = None,
                overwrite: bool = False) -> Path:
    """Export a sequence classifier folder to ONNX (FP32) with Optimum; returns the folder."""
    source = resolve_path(str(source))
    model, tokenizer = load_source_model(source)
    return export_model_onnx(model, tokenizer, output, source, opset, overwrite)


def export_model_onnx(model: Any, tokenizer: Any, output: str | Path,
                      source: str | Path | None = None, opset: int | None = None,
                      overwrite: bool = False) -> Path:
    """Export an in-memory classifier (e.g. a compacted pruned one) to an ONNX folder."""
    from optimum.exporters.onnx import onnx_export_from_model

    with staged_folder(output, overwrite, step="onnx-export") as stage:
        try:
            onnx_export_from_model(model.eval(), stage, task="text-classification", opset=opset,
                                   do_validation=False)
        except (ValueError, KeyError, NotImplementedError) as err:
            fail(f"cannot export {source or 'the model'} ({model.config.model_type}) to ONNX: "
                 f"{str(err).splitlines()[0][:200]}")
        tokenizer.save_pretrained(stage)
        model.config.save_pretrained(stage)
        counts = op_counts(stage / ONNX_NAME)
        write_provenance(stage, "onnx-export",
                         {"opset": opset or "default", "nodes": sum(counts.values())},
                         source=source)
    return Path(output)


# ---------------------------------------------------------------------------------------------
# Graph optimization


def has_cuda() -> bool:
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def optimize_onnx(source: str | Path, output: str | Path, level: str = "O2",
                  overwrite: bool = False) -> dict[str, int]:
    """ORTOptimizer at level O1-O3 (O4 = O3 + fp16, GPU only); returns the fused op counts."""
    from optimum.onnxruntime import AutoOptimizationConfig, ORTOptimizer

    source = Path(source)
    if level not in LEVELS:
        fail(f"unknown optimization level {level!r}; choose one of {', '.join(LEVELS)}")
    if level == "O4" and not has_cuda():
        fail("optimization level O4 (fp16) needs a CUDA GPU; on CPU use O1, O2 or O3")
    path = onnx_file(source)
    load_onnx_model(path)
    model_type = read_config(source).get("model_type", "unknown")
    with staged_folder(output, overwrite, step="onnx-optimize") as stage:
        try:
            optimizer = ORTOptimizer.from_pretrained(source, file_names=[path.name])
            config = AutoOptimizationConfig.with_optimization_level(
                level, for_gpu=(level == "O4"))
            optimizer.optimize(config, stage)
        except (KeyError, NotImplementedError, ValueError) as err:
            fail(f"cannot fuse the graph of {source} (model type {model_type!r}) with "
                 f"ORTOptimizer: {str(err).splitlines()[0][:200]}")
        produced = next(stage.glob("*_optimized.onnx"))
        produced.rename(stage / ONNX_NAME)
        copy_side_files(source, stage, overwrite=False)
        fused = fused_op_counts(op_counts(stage / ONNX_NAME))
        # O1 is ONNX Runtime's basic level (constant folding, no transformer fusions).
        if level != "O1" and not any(op in fused for op in (
                "Attention", "MultiHeadAttention", "SkipLayerNormalization")):
            fail(f"ORTOptimizer fused nothing in {source} (model type {model_type!r}): "
                 "this architecture has no fusion patterns; use the plain export")
        write_provenance(stage, "onnx-optimize", {"level": level, "fused_ops": fused},
                         source=source)
    return fused


def copy_side_files(source: Path, target: Path, overwrite: bool = True) -> None:
    """Config, tokenizer and the like: everything but the graph and the provenance record."""
    for path in source.iterdir():
        if path.is_file() and path.suffix not in (".onnx", ".onnx_data") \
                and path.name != "slimformer.json" \
                and (overwrite or not (target / path.name).exists()):
            shutil.copy2(path, target / path.name)


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        fail(f"no config.json in {folder}: the ONNX folder needs the model's config beside it")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------------------------
# Quantization


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


def quantization_config(preset: str, is_static: bool, per_channel: bool) -> Any:
    from optimum.onnxruntime import AutoQuantizationConfig

    return getattr(AutoQuantizationConfig, preset)(is_static=is_static, per_channel=per_channel)


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
                     per_channel: bool = True, overwrite: bool = False) -> dict[str, Any]:
    """Dynamic int8 (weights int8, activations quantized on the fly) of a plain or fused graph."""
    source = Path(source)
    check_not_quantized(source)
    preset = choose_preset(preset)
    config = quantization_config(preset, is_static=False, per_channel=per_channel)
    with staged_folder(output, overwrite, step="onnx-quantize-dynamic") as stage, \
            tempfile.TemporaryDirectory() as tmp:
        run_quantizer(with_inferred_types(source, Path(tmp)), stage, config)
        copy_side_files(source, stage, overwrite=False)
        settings = quantization_settings(preset, config, stage)
        write_provenance(stage, "onnx-quantize-dynamic", settings, source=source)
    return settings


def quantization_settings(preset: str, config: Any, stage: Path) -> dict[str, Any]:
    return {"preset": preset, "per_channel": config.per_channel,
            "reduce_range": config.reduce_range, "format": config.format.name,
            "weights": config.weights_dtype.name, "activations": config.activations_dtype.name,
            "integer_ops": integer_op_counts(op_counts(stage / ONNX_NAME))}


def calibration_dataset(folder: Path, texts: list[str], max_length: int, input_names: list[str]):
    """Tokenized calibration rows, padded to one fixed length, holding only the graph's inputs."""
    from datasets import Dataset

    from slimformer.torch_variant import load_folder_tokenizer

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


# ---------------------------------------------------------------------------------------------
# Inference


def session_options(threads: int) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return options


class OrtVariant(Variant):
    """An ONNX folder run by Optimum's ORTModelForSequenceClassification (CPU)."""

    kind = "onnx"

    def __init__(self, model: Any, tokenizer: Any, name: str, path: Path, max_length: int = 128):
        super().__init__(name, path)
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    @classmethod
    def detect(cls, folder: Path) -> bool:
        return any(folder.glob("*.onnx"))

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> OrtVariant:
        return cls(*load_ort_model(folder, threads), name, folder)

    @property
    def labels(self) -> list[str] | None:
        return config_labels(self.model.config)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        inputs = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="np")
        return np.asarray(self.model(**inputs).logits, dtype=np.float32)

    def info(self) -> dict[str, Any]:
        return {**super().info(), "file": self.model.path.name if self.model.path else None}


def config_labels(config: Any) -> list[str]:
    id2label = config.id2label
    return [id2label[i] for i in range(len(id2label))]


def load_ort_model(folder: Path, threads: int = 1) -> tuple[Any, Any]:
    """ORTModelForSequenceClassification and tokenizer of an ONNX folder, checked first."""
    from optimum.onnxruntime import ORTModelForSequenceClassification

    from slimformer.torch_variant import load_folder_tokenizer

    path = onnx_file(folder)
    load_onnx_model(path)
    read_config(folder)
    try:
        model = ORTModelForSequenceClassification.from_pretrained(
            folder, file_name=path.name, session_options=session_options(threads),
            provider="CPUExecutionProvider")
        tokenizer = load_folder_tokenizer(folder)
    except (OSError, ValueError) as err:
        fail(f"cannot load the ONNX model in {folder}: {str(err).splitlines()[0][:200]}")
    return model, tokenizer


def onnx_pipeline(folder: str | Path, threads: int = 1) -> Any:
    """transformers' text-classification pipeline on an ONNX folder (all scores, raw logits)."""
    from optimum.onnxruntime import pipeline

    model, tokenizer = load_ort_model(Path(folder), threads)
    return pipeline("text-classification", model=model, tokenizer=tokenizer)


class PipelineVariant(OrtVariant):
    """The same ONNX file run through `pipeline()`: what a user gets by composing it by hand."""

    kind = "onnx-pipeline"

    def __init__(self, pipe: Any, name: str, path: Path):
        super().__init__(pipe.model, pipe.tokenizer, name, path)
        self.pipe = pipe
        self.label_ids = {label: i for i, label in enumerate(config_labels(pipe.model.config))}

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> PipelineVariant:
        return cls(onnx_pipeline(folder, threads), name, folder)

    def predict_logits(self, texts: list[str]) -> np.ndarray:
        texts = check_texts(texts)
        outputs = self.pipe(texts, top_k=None, function_to_apply="none", truncation=True,
                            max_length=self.max_length, batch_size=len(texts))
        logits = np.zeros((len(texts), len(self.label_ids)), dtype=np.float32)
        for row, scores in enumerate(outputs):
            for item in scores:
                logits[row, self.label_ids[item["label"]]] = item["score"]
        return logits

