"""Where each architecture keeps its encoder layers, attention heads and feed-forward linears."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from slimformer.errors import fail


@dataclass(frozen=True)
class Layout:
    """Where a model family keeps its layers, attention and FFN linears (dotted paths)."""

    layers: str
    attention: str  # the module with prune_heads()
    query: str
    key: str
    value: str
    attn_out: str
    ffn_in: str
    ffn_out: str
    heads_config: str  # config attribute with the number of heads
    act_config: str  # config attribute naming the FFN activation
    ffn_config: str  # config attribute with the FFN width


# One row per model type, in Layout's field order.
LAYOUTS = {model_type: Layout(*paths) for model_type, paths in {
    "bert": ("encoder.layer", "attention", "attention.self.query", "attention.self.key",
             "attention.self.value", "attention.output.dense", "intermediate.dense",
             "output.dense", "num_attention_heads", "hidden_act", "intermediate_size"),
    "distilbert": ("transformer.layer", "attention", "attention.q_lin", "attention.k_lin",
                   "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2", "n_heads",
                   "activation", "hidden_dim"),
}.items()}


def layout_of(model: nn.Module) -> Layout:
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in LAYOUTS:
        fail(f"pruning does not know the attention/FFN layout of model type {model_type!r} "
             f"({type(model).__name__}); supported: {', '.join(LAYOUTS)}")
    return LAYOUTS[model_type]


def get_module(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(get_module(root, parent) if parent else root, name, module)


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    return list(get_module(model.base_model, layout_of(model).layers))


def head_size(model: nn.Module) -> int:
    config = model.config
    hidden = getattr(config, "hidden_size", None) or config.dim
    return hidden // getattr(config, layout_of(model).heads_config)
