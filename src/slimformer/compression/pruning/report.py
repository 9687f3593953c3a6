"""Sparsity report: heads, neurons and parameters kept per layer (JSON and Markdown)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimformer.models.architectures import architecture_of, encoder_layers, get_module, head_size


@torch.no_grad()
def layer_stats(model: nn.Module) -> list[dict[str, int]]:
    """Per layer: heads, FFN neurons, nonzero and total weights of the attention/FFN linears."""
    layout = architecture_of(model)
    size = head_size(model)
    stats = []
    for layer in encoder_layers(model):
        linears = [get_module(layer, p) for p in (layout.query, layout.key, layout.value,
                                                  layout.attn_out, layout.ffn_in,
                                                  layout.ffn_out)]
        stats.append({
            "heads": get_module(layer, layout.query).out_features // size,
            "neurons": get_module(layer, layout.ffn_in).out_features,
            "weights_nonzero": sum(int(m.weight.count_nonzero()) for m in linears),
            "weights": sum(m.weight.numel() for m in linears),
            "params": sum(p.numel() for m in linears for p in m.parameters()),
        })
    return stats


def sparsity_report(masked: list[dict[str, int]], compacted: nn.Module,
                    params_before: int) -> dict[str, Any]:
    """Heads, neurons and parameters kept per layer: masked model vs compacted model."""
    after = layer_stats(compacted)
    layers = []
    for i, (m, a) in enumerate(zip(masked, after)):
        layers.append({
            "layer": i, "heads": m["heads"], "heads_kept": a["heads"],
            "neurons": m["neurons"], "neurons_kept": a["neurons"],
            "masked_weights_kept": round(m["weights_nonzero"] / m["weights"], 4),
            "params": m["params"], "params_kept": a["params"],
        })
    params_after = sum(p.numel() for p in compacted.parameters())
    encoder_before = sum(x["params"] for x in layers)
    encoder_after = sum(x["params_kept"] for x in layers)
    return {
        "layers": layers,
        "encoder_params": encoder_before, "encoder_params_kept": encoder_after,
        "encoder_params_kept_ratio": round(encoder_after / max(encoder_before, 1), 4),
        "model_params": params_before, "model_params_kept": params_after,
        "heads_kept": sum(x["heads_kept"] for x in layers),
        "heads": sum(x["heads"] for x in layers),
        "neurons_kept": sum(x["neurons_kept"] for x in layers),
        "neurons": sum(x["neurons"] for x in layers),
    }


def report_markdown(report: dict[str, Any]) -> str:
    rows = ["| layer | heads kept | FFN neurons kept | masked weights kept | "
            "params kept (attention + FFN) |", "|---|---|---|---|---|"]
    for x in report["layers"]:
        rows.append(f"| {x['layer']} | {x['heads_kept']}/{x['heads']} | "
                    f"{x['neurons_kept']}/{x['neurons']} | {x['masked_weights_kept']:.1%} | "
                    f"{x['params_kept']:,}/{x['params']:,} "
                    f"({x['params_kept'] / max(x['params'], 1):.1%}) |")
    rows.append(f"| all | {report['heads_kept']}/{report['heads']} | "
                f"{report['neurons_kept']}/{report['neurons']} | | "
                f"{report['encoder_params_kept']:,}/{report['encoder_params']:,} "
                f"({report['encoder_params_kept_ratio']:.1%}) |")
    total = (f"\nWhole model: {report['model_params_kept']:,} of {report['model_params']:,} "
             f"parameters ({report['model_params_kept'] / report['model_params']:.1%}; "
             "embeddings and classifier are not pruned).\n")
    return "# Sparsity per layer\n\n" + "\n".join(rows) + "\n" + total


def write_sparsity_report(report: dict[str, Any], folder: str | Path) -> None:
    folder = Path(folder)
    (folder / "sparsity.json").write_text(json.dumps(report, indent=2))
    (folder / "sparsity.md").write_text(report_markdown(report))
