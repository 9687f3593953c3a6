"""Every supported encoder architecture's geometry, in one place.

Layer-subset students, pruning and compaction, vocabulary trimming and the ONNX steps ask this
module where a model keeps its encoder layers, attention heads and their projections, its FFN
linears and its word embeddings, and what each step can do with it. An architecture missing
here gets a one-line error naming what is missing, before any training starts.

What was measured for each (tests/test_architectures.py, tiny random models; docs/
architectures.md): ONNX Runtime's optimizer fuses Attention for the BERT-style self-attention
(BERT, DistilBERT, RoBERTa, XLM-RoBERTa, ELECTRA) and not for attention with a relative
position term (MPNet, DeBERTa-v2) or rotary, windowed attention (ModernBERT), which still get
SkipLayerNormalization and Gelu fusions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from slimformer.errors import fail


@dataclass(frozen=True)
class Architecture:
    """Where a model family keeps its parts (dotted paths) and what each step may do with it.

    Paths of `layers` start at `model.base_model`; the others at one encoder layer. `query`
    is None for a fused q/k/v projection (`qkv`)."""

    model_type: str
    layers: str  # the ModuleList of encoder layers
    query: str | None
    key: str | None
    value: str | None
    attn_out: str
    ffn_in: str
    ffn_out: str
    heads_config: str = "num_attention_heads"  # config attribute: heads per layer
    act_config: str = "hidden_act"  # config attribute: the FFN activation
    ffn_config: str = "intermediate_size"  # config attribute: the FFN width
    attention: str | None = "attention"  # the module with prune_heads(); None: none
    qkv: str | None = None
    fuses_attention: bool = True  # ONNX Runtime's optimizer fuses its Attention (measured)
    # Why whole heads cannot be removed (the masks would only zero them); "" when they can.
    no_head_removal: str = ""
    # Why nothing can be pruned; "" when heads and/or FFN neurons can.
    no_pruning: str = ""

    @property
    def pruning(self) -> str:
        """What pruning removes, in words (docs and errors)."""
        if self.no_pruning:
            return "nothing"
        return "FFN neurons" if self.no_head_removal else "attention heads and FFN neurons"


BERT_PATHS = ("encoder.layer", "attention.self.query", "attention.self.key",
              "attention.self.value", "attention.output.dense", "intermediate.dense",
              "output.dense")
RELATIVE = ("{name} adds one relative-position bias per head, shared by every layer, and "
            "transformers cannot remove its heads")

ARCHITECTURES: dict[str, Architecture] = {a.model_type: a for a in (
    Architecture("bert", *BERT_PATHS),
    Architecture("roberta", *BERT_PATHS),
    Architecture("xlm-roberta", *BERT_PATHS),
    Architecture("camembert", *BERT_PATHS),
    Architecture("electra", *BERT_PATHS),
    Architecture("distilbert", "transformer.layer", "attention.q_lin", "attention.k_lin",
                 "attention.v_lin", "attention.out_lin", "ffn.lin1", "ffn.lin2",
                 heads_config="n_heads", act_config="activation", ffn_config="hidden_dim"),
    Architecture("mpnet", "encoder.layer", "attention.attn.q", "attention.attn.k",
                 "attention.attn.v", "attention.attn.o", "intermediate.dense", "output.dense",
                 fuses_attention=False, no_head_removal=RELATIVE.format(name="MPNet")),
    Architecture("deberta-v2", "encoder.layer", "attention.self.query_proj",
                 "attention.self.key_proj", "attention.self.value_proj",
                 "attention.output.dense", "intermediate.dense", "output.dense",
                 fuses_attention=False,
                 no_head_removal="DeBERTa-v2's disentangled attention has no prune_heads in "
                                 "transformers, so a model with removed heads would not load"),
    Architecture("modernbert", "layers", None, None, None, "attn.Wo", "mlp.Wi", "mlp.Wo",
                 act_config="hidden_activation", attention=None, qkv="attn.Wqkv",
                 fuses_attention=False,
                 no_pruning="ModernBERT fuses q, k and v into one linear and gates its FFN "
                            "(GLU); slimformer's masks do not know that layout yet"),
)}


def model_type_of(model_or_config: Any) -> str | None:
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", None)


def architecture_of(model_or_config: Any, purpose: str = "this step") -> Architecture:
    """The model's Architecture; an unknown one is a one-line error naming what is missing."""
    model_type = model_type_of(model_or_config)
    if model_type not in ARCHITECTURES:
        fail(f"{purpose} does not know the encoder layout (layers, attention heads, FFN) of "
             f"model type {model_type!r}; supported: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[model_type]


def check_prunable(model_or_config: Any, prune_attention: bool, prune_ffn: bool) -> None:
    """Fails before training when the settings ask for what this architecture cannot do."""
    arch = architecture_of(model_or_config, "pruning")
    if arch.no_pruning:
        fail(f"pruning does not support model type {arch.model_type!r}: {arch.no_pruning}")
    if prune_attention and arch.no_head_removal:
        fail(f"pruning cannot remove attention heads of model type {arch.model_type!r}: "
             f"{arch.no_head_removal}; pass --prune_attention false to prune FFN neurons only")
    if not (prune_attention or prune_ffn):
        fail("nothing to prune: both prune_attention and prune_ffn are off")


def get_module(root: nn.Module, path: str) -> nn.Module:
    for part in path.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def set_module(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(get_module(root, parent) if parent else root, name, module)


def encoder_layers(model: nn.Module, purpose: str = "this step") -> nn.ModuleList:
    return get_module(model.base_model, architecture_of(model, purpose).layers)


def set_encoder_layers(model: nn.Module, layers: nn.ModuleList) -> None:
    set_module(model.base_model, architecture_of(model).layers, layers)
    model.config.num_hidden_layers = len(layers)  # n_layers for DistilBERT (attribute map)


def head_size(model: nn.Module) -> int:
    config = model.config
    hidden = getattr(config, "hidden_size", None) or config.dim
    return hidden // getattr(config, architecture_of(model).heads_config)


def check_student_layers(config: Any, layers: list[int]) -> None:
    """Layer choices a reloaded student could not rebuild (ModernBERT: the first layer has no
    attention norm, and every n-th layer attends globally, by position)."""
    if model_type_of(config) != "modernbert":
        return
    every = config.global_attn_every_n_layers
    wrong = [f"layer {j} <- teacher {i}" for j, i in enumerate(layers)
             if (i == 0) != (j == 0) or (i % every == 0) != (j % every == 0)]
    if wrong:
        fail(f"ModernBERT student layers {layers} cannot be reloaded as they are "
             f"({', '.join(wrong)}): the first kept layer must be teacher layer 0, and a "
             f"layer at a multiple of {every} (global attention) must land on one")
