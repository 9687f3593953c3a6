"""PyTorch dynamic int8 quantization of `nn.Linear`, with a save format that needs no pickle.

`save_pretrained` cannot write a dynamically quantized model (its Linear weights live in packed
C++ objects), and pickling the module would make loading run arbitrary code. A variant folder
instead holds:

- `model-int8.safetensors`: for each quantized Linear, its int8 weight, scales, zero points
  (per output channel or per tensor) and float bias; every other tensor as it was;
- `config.json` and the tokenizer, as `save_pretrained` writes them;
- `slimformer-int8.json`: the marker that names the format and the quantized modules.

Loading builds the float architecture from the config, quantizes it the same way (which gives the
packed structure) and puts the stored int8 weights in, so logits match the saved model exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification

from slimformer.errors import fail
from slimformer.files import read_json, staged_folder
from slimformer.models.aliases import resolve_path
from slimformer.models.loading import load_classifier_folder, load_folder_tokenizer
from slimformer.provenance import write_provenance
from slimformer.serving.torch import TransformersVariant

WEIGHTS_NAME = "model-int8.safetensors"
MARKER_NAME = "slimformer-int8.json"
FORMAT = "slimformer-torch-dynamic-int8"
FORMAT_VERSION = 1


def dynamic_quantized_linear() -> type[nn.Module]:
    return torch.ao.nn.quantized.dynamic.Linear


def quantize_model(model: nn.Module, per_channel: bool = True) -> nn.Module:
    """Every nn.Linear to int8 weights with dynamically quantized activations (a copy)."""
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig
    from torch.ao.quantization import quantize_dynamic as torch_quantize_dynamic

    qconfig = per_channel_dynamic_qconfig if per_channel else default_dynamic_qconfig
    return torch_quantize_dynamic(model.eval(), {nn.Linear: qconfig}, dtype=torch.qint8,
                                  inplace=False)


def quantized_linears(model: nn.Module) -> dict[str, nn.Module]:
    cls = dynamic_quantized_linear()
    return {name: module for name, module in model.named_modules() if isinstance(module, cls)}


def int8_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    """Plain tensors for the safetensors file: int8 weights with their scales, and the rest."""
    linears = quantized_linears(model)
    tensors: dict[str, torch.Tensor] = {}
    for name, module in linears.items():
        weight, bias = module.weight(), module.bias()
        tensors[f"{name}.weight_int8"] = weight.int_repr()
        if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
            tensors[f"{name}.weight_scale"] = weight.q_per_channel_scales().float()
            tensors[f"{name}.weight_zero_point"] = weight.q_per_channel_zero_points().int()
        else:
            tensors[f"{name}.weight_scale"] = torch.tensor([weight.q_scale()], dtype=torch.float)
            tensors[f"{name}.weight_zero_point"] = torch.tensor([weight.q_zero_point()],
                                                                dtype=torch.int)
        if bias is not None:
            tensors[f"{name}.bias"] = bias.detach()
    for name, tensor in float_state(model, linears).items():
        tensors[name] = tensor
    # safetensors refuses tensors that share memory (tied embeddings): store copies.
    return {name: t.detach().contiguous().clone() for name, t in tensors.items()}


def float_state(model: nn.Module, linears: dict[str, nn.Module]) -> dict[str, torch.Tensor]:
    prefixes = tuple(f"{name}." for name in linears)
    return {name: tensor for name, tensor in model.state_dict().items()
            if not name.startswith(prefixes) and isinstance(tensor, torch.Tensor)
            and not tensor.is_quantized}


def save_torch_int8(model: nn.Module, tokenizer: Any, folder: str | Path,
                    per_channel: bool = True) -> None:
    """Write a dynamically quantized classifier (and its tokenizer) in slimformer's int8 format."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    linears = quantized_linears(model)
    if not linears:
        fail("the model has no dynamically quantized nn.Linear; run quantize_model first")
    save_file(int8_tensors(model), str(folder / WEIGHTS_NAME), metadata={"format": FORMAT})
    model.config.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    marker = {"format": FORMAT, "version": FORMAT_VERSION, "dtype": "qint8",
              "per_channel": per_channel, "engine": torch.backends.quantized.engine,
              "modules": sorted(linears)}
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=2))


def read_marker(folder: Path) -> dict[str, Any]:
    path = folder / MARKER_NAME
    if not path.is_file():
        fail(f"{folder} is not a slimformer PyTorch int8 folder: {MARKER_NAME} is missing")
    marker = read_json(path)
    if marker.get("format") != FORMAT or marker.get("version") != FORMAT_VERSION:
        fail(f"{path} names format {marker.get('format')!r} v{marker.get('version')}; this "
             f"slimformer reads {FORMAT} v{FORMAT_VERSION}")
    return marker


def quantized_weight(tensors: dict[str, torch.Tensor], name: str,
                     per_channel: bool) -> torch.Tensor:
    values = tensors[f"{name}.weight_int8"]
    scale, zero_point = tensors[f"{name}.weight_scale"], tensors[f"{name}.weight_zero_point"]
    if not per_channel:
        return torch._make_per_tensor_quantized_tensor(values, float(scale), int(zero_point))
    return torch._make_per_channel_quantized_tensor(values, scale.double(), zero_point.long(), 0)


def load_torch_int8(folder: str | Path) -> nn.Module:
    """Rebuild a model saved by `save_torch_int8`: structure from the config, int8 weights in."""
    folder = Path(folder)
    marker = read_marker(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        fail(f"{folder} has {MARKER_NAME} but no {WEIGHTS_NAME}")
    try:
        tensors = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error type for bad headers
        fail(f"{weights} is not a readable safetensors file: {str(err)[:200]}")
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_config(config).eval()
    floats = {k: v for k, v in tensors.items()
              if not k.endswith((".weight_int8", ".weight_scale", ".weight_zero_point"))}
    missing, unexpected = model.load_state_dict(floats, strict=False)
    expected_missing = {f"{m}.{p}" for m in marker["modules"] for p in ("weight", "bias")}
    if unexpected or set(missing) - expected_missing:
        fail(f"{weights} does not match the architecture in config.json: "
             f"{len(set(missing) - expected_missing)} tensors missing, {len(unexpected)} "
             "unexpected")
    per_channel = bool(marker.get("per_channel", True))
    model = quantize_model(model, per_channel)
    linears = quantized_linears(model)
    if sorted(linears) != marker["modules"]:
        fail(f"{folder}: the quantized modules differ from those in {MARKER_NAME}")
    for name, module in linears.items():
        weight = quantized_weight(tensors, name, per_channel)
        module.set_weight_bias(weight, tensors.get(f"{name}.bias"))
    return model


def quantize_torch_folder(source: str | Path, output: str | Path, per_channel: bool = True,
                          overwrite: bool = False) -> Path:
    """PyTorch dynamic int8 variant of a classifier folder, written in slimformer's format."""
    source = resolve_path(str(source))
    if not (source / "config.json").is_file():
        fail(f"no model in {source}: config.json is missing")
    if (source / MARKER_NAME).is_file():
        fail(f"{source} is already a PyTorch int8 variant")
    model = quantize_model(load_classifier_folder(source), per_channel)
    tokenizer = load_folder_tokenizer(source)
    with staged_folder(output, overwrite, step="quantize-dynamic-torch") as stage:
        save_torch_int8(model, tokenizer, stage, per_channel)
        write_provenance(stage, "quantize-dynamic-torch",
                         {"dtype": "qint8", "modules": "nn.Linear", "per_channel": per_channel,
                          "engine": torch.backends.quantized.engine}, source=source)
    return Path(output)


def torch_int8_pipeline(folder: str | Path) -> Any:
    """transformers' text-classification pipeline on a PyTorch int8 folder."""
    from transformers import pipeline

    return pipeline("text-classification", model=load_torch_int8(folder),
                    tokenizer=load_folder_tokenizer(folder))


class TorchInt8Variant(TransformersVariant):
    kind = "pytorch-int8"
    batch_dependent = True  # dynamic int8: one activation scale per batch

    def __init__(self, model: Any, tokenizer: Any, name: str, path: str | Path | None = None,
                 max_length: int = 128, per_channel: bool = True):
        super().__init__(model, tokenizer, name, path, max_length)
        self.per_channel = per_channel

    @classmethod
    def from_float(cls, variant: TransformersVariant, name: str,
                   per_channel: bool = True) -> TorchInt8Variant:
        """Quantize an in-memory PyTorch variant (e.g. a freshly distilled student)."""
        return cls(quantize_model(variant.model, per_channel), variant.tokenizer, name,
                   per_channel=per_channel)

    @classmethod
    def detect(cls, folder: Path) -> bool:
        return (folder / MARKER_NAME).is_file()

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> TorchInt8Variant:
        torch.set_num_threads(threads)
        model = load_torch_int8(folder)
        return cls(model, load_folder_tokenizer(folder), name, folder,
                   per_channel=read_marker(folder).get("per_channel", True))

    def save(self, folder: Path) -> None:
        save_torch_int8(self.model, self.tokenizer, folder, self.per_channel)
