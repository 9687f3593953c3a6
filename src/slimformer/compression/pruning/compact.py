"""Compaction: turn a masked model into a smaller dense one with the same outputs.

A head whose output-projection columns are all zero contributes nothing; one whose value rows
are all zero contributes a constant (softmax rows sum to 1), folded into the output bias.
Either way transformers' `prune_heads` deletes it. Likewise an FFN neuron whose column of the
second linear is zero contributes nothing, and one whose row of the first linear is zero
contributes act(bias), folded into the second linear's bias; `prune_linear_layer` deletes it.
Every layer keeps at least one head and one neuron (zeroed so they add nothing), because the
attention code cannot reshape to zero heads.

After compaction the FFN width can differ per layer, which `from_pretrained` cannot rebuild:
`save_pruned` stores the widths as `slimformer_intermediate_sizes` in config.json and
`load_pruned` rebuilds the model from them (weights in safetensors). When all layers keep the
same width, the config's own FFN width is set instead and `from_pretrained` works as usual."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForSequenceClassification
from transformers.activations import get_activation
from transformers.pytorch_utils import prune_linear_layer

from slimformer.errors import fail
from slimformer.models.architectures import (
    architecture_of,
    encoder_layers,
    get_module,
    head_size,
    set_module,
)
from slimformer.models.loading import load_folder_tokenizer
from slimformer.serving.torch import TransformersVariant

WIDTHS_KEY = "slimformer_intermediate_sizes"


def _zero(tensor: torch.Tensor) -> bool:
    return not bool(tensor.any())


def original_head_ids(attention: nn.Module, n_original: int) -> list[int]:
    """Original indices of the heads still present (prune_heads takes original indices)."""
    pruned = set(getattr(attention, "pruned_heads", set()))
    return [h for h in range(n_original) if h not in pruned]


@torch.no_grad()
def empty_heads(layer: nn.Module, layout: Any, size: int) -> list[int]:
    """Positions of heads that add nothing or a constant; constants are folded into the bias."""
    value = get_module(layer, layout.value)
    out = get_module(layer, layout.attn_out)
    n_heads = value.out_features // size
    empty = []
    for h in range(n_heads):
        cols = slice(h * size, (h + 1) * size)
        if _zero(out.weight[:, cols]):
            empty.append(h)
        elif _zero(value.weight[cols]):
            if value.bias is not None and out.bias is not None:
                out.bias += out.weight[:, cols] @ value.bias[cols]
            out.weight[:, cols] = 0
            empty.append(h)
    if len(empty) == n_heads:  # keep one (its out columns are zero, so it adds nothing)
        empty.pop(0)
    return empty


@torch.no_grad()
def empty_neurons(layer: nn.Module, layout: Any, activation: Any) -> list[int]:
    """FFN neurons that add nothing or a constant (folded into the second linear's bias)."""
    first = get_module(layer, layout.ffn_in)
    second = get_module(layer, layout.ffn_out)
    dead_out = ~second.weight.any(dim=0)
    dead_in = ~first.weight.any(dim=1) & ~dead_out
    if dead_in.any() and second.bias is not None:
        bias_in = first.bias[dead_in] if first.bias is not None else first.weight.new_zeros(
            int(dead_in.sum()))
        second.bias += second.weight[:, dead_in] @ activation(bias_in)
        second.weight[:, dead_in] = 0
    empty = torch.nonzero(dead_out | dead_in).flatten().tolist()
    if len(empty) == first.out_features:
        empty.pop(0)
    return empty


@torch.no_grad()
def compact(model: nn.Module) -> nn.Module:
    """Delete empty heads and FFN neurons in place; a model with none is left as it is."""
    layout = architecture_of(model)
    config = model.config
    size = head_size(model)
    n_original = getattr(config, layout.heads_config)
    activation = get_activation(getattr(config, layout.act_config))
    heads_to_prune: dict[int, list[int]] = {}
    removes_heads = layout.attention is not None and not layout.no_head_removal
    for i, layer in enumerate(encoder_layers(model)):
        if removes_heads:
            attention = get_module(layer, layout.attention)
            remaining = original_head_ids(attention, n_original)
            empty = empty_heads(layer, layout, size)
            if empty:
                heads_to_prune[i] = [remaining[h] for h in empty]
        dead = set(empty_neurons(layer, layout, activation))
        if dead:
            width = get_module(layer, layout.ffn_in).out_features
            keep = torch.tensor([j for j in range(width) if j not in dead], dtype=torch.long)
            set_module(layer, layout.ffn_in, prune_linear_layer(
                get_module(layer, layout.ffn_in), keep, dim=0))
            set_module(layer, layout.ffn_out, prune_linear_layer(
                get_module(layer, layout.ffn_out), keep, dim=1))
    if heads_to_prune:
        model.prune_heads(heads_to_prune)
    record_widths(model)
    return model


def ffn_widths(model: nn.Module) -> list[int]:
    layout = architecture_of(model)
    return [get_module(layer, layout.ffn_in).out_features for layer in encoder_layers(model)]


def record_widths(model: nn.Module) -> None:
    """Per-layer FFN widths in the config (or the config's own width when they are equal)."""
    layout = architecture_of(model)
    widths = ffn_widths(model)
    if len(set(widths)) == 1:
        setattr(model.config, layout.ffn_config, widths[0])
        if hasattr(model.config, WIDTHS_KEY):
            delattr(model.config, WIDTHS_KEY)
    else:
        setattr(model.config, WIDTHS_KEY, widths)


def save_pruned(model: nn.Module, tokenizer: Any, folder: str | Path,
                write_extras: Callable[[Path], None] | None = None,
                overwrite: bool = False) -> Path:
    """Config, safetensors weights, tokenizer (and `write_extras(folder)`'s files), written to
    a staging folder that is renamed to `folder` at the end (an earlier pruning output there is
    replaced; anything else only with `overwrite`)."""
    from slimformer.files import staged_folder

    folder = Path(folder)
    record_widths(model)
    with staged_folder(folder, overwrite, step="prune",
                       flag="--overwrite_output_dir true") as stage:
        model.save_pretrained(stage, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(stage)
        if write_extras is not None:
            write_extras(stage)
        if not (stage / "slimformer.json").is_file():  # marks it as a pruning output
            from slimformer.files import write_marker

            write_marker(stage, "prune")
    return folder


def is_pruned_folder(folder: str | Path) -> bool:
    path = Path(folder) / "config.json"
    if not path.is_file():
        return False
    try:
        return WIDTHS_KEY in json.loads(path.read_text())
    except json.JSONDecodeError:
        return False


def load_pruned(folder: str | Path) -> nn.Module:
    """A compacted classifier: pruned heads from the config, FFN widths per layer."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        fail(f"no config.json in {folder}")
    config = AutoConfig.from_pretrained(folder)
    widths = getattr(config, WIDTHS_KEY, None)
    if widths is None:
        return AutoModelForSequenceClassification.from_pretrained(folder).eval()
    model = AutoModelForSequenceClassification.from_config(config)  # prunes config's heads
    layout = architecture_of(model)
    layers = encoder_layers(model)
    if len(widths) != len(layers):
        fail(f"{folder}/config.json: {WIDTHS_KEY} has {len(widths)} entries for "
             f"{len(layers)} layers")
    for layer, width in zip(layers, widths):
        first = get_module(layer, layout.ffn_in)
        second = get_module(layer, layout.ffn_out)
        set_module(layer, layout.ffn_in, nn.Linear(first.in_features, width))
        set_module(layer, layout.ffn_out, nn.Linear(width, second.out_features))
    weights = folder / "model.safetensors"
    if not weights.is_file():
        fail(f"no model.safetensors in {folder}")
    missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        fail(f"{weights} does not fit its config: missing {missing[:3]}, "
             f"unexpected {unexpected[:3]}")
    return model.eval()


class PrunedVariant(TransformersVariant):
    """A compacted model whose FFN widths differ per layer (see `load_pruned`)."""

    kind = "pytorch-pruned"

    @classmethod
    def detect(cls, folder: Path) -> bool:
        return is_pruned_folder(folder) and (folder / "model.safetensors").is_file()

    @classmethod
    def load(cls, folder: Path, name: str, threads: int) -> PrunedVariant:
        torch.set_num_threads(threads)
        return cls(load_pruned(folder), load_folder_tokenizer(folder), name, folder)


def export_pruned_onnx(model: nn.Module, tokenizer: Any, output: str | Path,
                       source: str | Path | None = None, opset: int | None = None,
                       overwrite: bool = False) -> Path:
    """Export an in-memory (compacted) classifier to an ONNX folder.

    `slimformer.compression.onnx.export.export_onnx` reloads its source with `from_pretrained`,
    which cannot
    rebuild per-layer FFN widths; this exports the model object itself. The folder then goes
    through `slimformer.compression.onnx.optimize.optimize_onnx` / `quantize_dynamic` like any
    other export.
    """
    from slimformer.compression.onnx.export import export_model_onnx

    return export_model_onnx(model, tokenizer, output, source, opset, overwrite)
