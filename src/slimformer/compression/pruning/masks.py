"""Pruning during fine-tuning: magnitude, movement (top-k) and soft movement (sigmoid threshold).

The method of Sanh et al. 2020 (movement pruning) with the block structure of Lagunas et al.
2021 (Hugging Face's nn_pruning): attention weights are masked per block (default 32x32) or per
head, feed-forward weights per neuron (a row of the first FFN linear together with the
matching column of the second). Masks sit on the model's own `nn.Linear` weights through
`torch.nn.utils.parametrize`; their scores live in a separate `Pruner` module, so the model's
state dict keeps its usual names. The sparsity follows the cubic schedule

    s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (N * dt))^3

(held at s_i before t0 = warmup, at s_f during the final cooldown). For soft movement the
same schedule ramps the threshold tau (0 -> `final_threshold`) and the L1 weight lambda
(0 -> `regularization_lambda`). After training, `Pruner.bake` leaves plain weights with the
zeros in them, and `slimformer.compression.pruning.compact.compact` deletes empty heads and neurons.

nn_pruning's names, for those who know it: "topK" = `topk`, "sigmoied_threshold" = `sigmoid`,
"magnitude" = `magnitude`; attention_block_rows/cols = `attention_block: "32x32"`,
dense_block_rows/cols = 1 = per-neuron FFN pruning."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn
from torch.nn.utils import parametrize

from slimformer.compression.pruning.args import PruningArguments, check_settings, parse_block
from slimformer.compression.pruning.schedule import PruneState, schedule_state
from slimformer.errors import fail
from slimformer.models.architectures import (
    Architecture,
    architecture_of,
    check_prunable,
    encoder_layers,
    get_module,
    head_size,
)


def block_view(weight: torch.Tensor, block: tuple[int, int]) -> torch.Tensor:
    rows, cols = block
    return weight.view(weight.shape[0] // rows, rows, weight.shape[1] // cols, cols)


def topk_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """1 for the (1 - sparsity) share of highest scores, 0 elsewhere."""
    n = scores.numel()
    keep = n - int(round(sparsity * n))
    mask = torch.zeros(n, dtype=scores.dtype, device=scores.device)
    if keep > 0:
        mask[torch.topk(scores.detach().flatten(), keep).indices] = 1.0
    return mask.view_as(scores)


class ScoreGroup(nn.Module):
    """Scores for one grid of blocks, shared by the linears it masks (e.g. an FFN neuron).

    `members` are (linear, block, transposed): the linear's weight is cut into `block`-sized
    tiles laid out like the grid (or its transpose).
    """

    def __init__(self, grid: tuple[int, int], state: PruneState, init: float):
        super().__init__()
        self.scores = nn.Parameter(torch.full(grid, float(init)))
        self.state = state
        self.members: list[tuple[nn.Module, tuple[int, int], bool]] = []

    def magnitude_scores(self) -> torch.Tensor:
        total = torch.zeros_like(self.scores)
        for linear, block, transposed in self.members:
            weight = (linear.parametrizations.weight.original
                      if parametrize.is_parametrized(linear, "weight") else linear.weight).detach()
            tiles = block_view(weight.abs(), block).mean(dim=(1, 3))
            total += tiles.t() if transposed else tiles
        return total

    def mask(self) -> torch.Tensor:
        """The hard 0/1 mask; its gradient goes straight through to the scores (STE)."""
        state = self.state
        if state.method == "magnitude":
            return topk_mask(self.magnitude_scores(), state.sparsity)
        if state.method == "topk":
            hard = topk_mask(self.scores, state.sparsity)
        else:
            hard = (torch.sigmoid(self.scores) > state.threshold).to(self.scores.dtype)
        return hard + (self.scores - self.scores.detach())  # exactly `hard` in the forward

    def hard_mask(self) -> torch.Tensor:
        with torch.no_grad():
            return self.mask().detach()


class BlockMask(nn.Module):
    """Parametrization: weight * (the group's mask, expanded from blocks to elements)."""

    def __init__(self, group: ScoreGroup, block: tuple[int, int], transposed: bool):
        super().__init__()
        object.__setattr__(self, "group", group)  # not a submodule: scores live in the Pruner
        self.block = block
        self.transposed = transposed

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        mask = self.group.mask()
        if self.transposed:
            mask = mask.t()
        tiles = block_view(weight, self.block) * mask[:, None, :, None].to(weight.dtype)
        return tiles.reshape(weight.shape)


class Pruner(nn.Module):
    """Score groups attached to a model's attention and FFN linears, and their schedule."""

    def __init__(self, model: nn.Module, args: PruningArguments):
        super().__init__()
        check_settings(args)
        self.args = args
        self.state = PruneState(args.pruning_method)
        self.groups = nn.ModuleDict()
        self.linears: dict[str, nn.Module] = {}
        check_prunable(model, args.prune_attention, args.prune_ffn)
        layout = architecture_of(model, "pruning")
        block = parse_block(args.attention_block)
        self.step(0, 1)  # masks at s_i before training starts
        for i, layer in enumerate(encoder_layers(model)):
            prefix = f"{layout.layers}.{i}"
            if args.prune_attention:
                self.add_attention(layer, layout, prefix, block, head_size(model))
            if args.prune_ffn:
                self.add_ffn(layer, layout, prefix)

    def new_group(self, name: str, grid: tuple[int, int]) -> ScoreGroup:
        group = ScoreGroup(grid, self.state, self.args.score_init)
        self.groups[name.replace(".", "_")] = group
        return group

    def attach(self, group: ScoreGroup, layer: nn.Module, path: str, prefix: str,
               block: tuple[int, int], transposed: bool = False) -> None:
        linear = get_module(layer, path)
        if not isinstance(linear, nn.Linear):
            fail(f"{prefix}.{path} is {type(linear).__name__}, not nn.Linear; cannot prune it")
        rows, cols = linear.weight.shape
        if rows % block[0] or cols % block[1]:
            fail(f"block size {block[0]}x{block[1]} does not divide the weight of "
                 f"{prefix}.{path} ({rows}x{cols})")
        group.members.append((linear, block, transposed))
        parametrize.register_parametrization(linear, "weight", BlockMask(group, block, transposed))
        self.linears[f"{prefix}.{path}"] = linear

    def add_attention(self, layer: nn.Module, layout: Architecture, prefix: str,
                      block: tuple[int, int] | None, size: int) -> None:
        paths = (layout.query, layout.key, layout.value, layout.attn_out)
        if block is None:  # one score per head, shared by q, k, v (rows) and out (columns)
            out, hidden = get_module(layer, layout.query).weight.shape
            group = self.new_group(f"{prefix}.heads", (out // size, 1))
            for path in paths[:3]:
                self.attach(group, layer, path, prefix, (size, hidden))
            out_hidden = get_module(layer, layout.attn_out).weight.shape[0]
            self.attach(group, layer, layout.attn_out, prefix, (out_hidden, size), True)
            return
        for path in paths:
            rows, cols = get_module(layer, path).weight.shape
            group = self.new_group(f"{prefix}.{path}", (rows // block[0], cols // block[1]))
            self.attach(group, layer, path, prefix, block)

    def add_ffn(self, layer: nn.Module, layout: Architecture, prefix: str) -> None:
        width, hidden = get_module(layer, layout.ffn_in).weight.shape
        group = self.new_group(f"{prefix}.ffn", (width, 1))  # one score per neuron
        self.attach(group, layer, layout.ffn_in, prefix, (1, hidden))
        self.attach(group, layer, layout.ffn_out, prefix, (hidden, 1), True)

    # ---- schedule and regulariser

    def step(self, step: int, total_steps: int) -> PruneState:
        """Move the schedule to `step` of `total_steps` (called before every training step)."""
        current = schedule_state(self.args, step, total_steps)
        self.state.sparsity, self.state.threshold, self.state.lam = (
            current.sparsity, current.threshold, current.lam)
        return self.state

    def regularization(self) -> torch.Tensor:
        """lambda_t * mean(sigmoid(S)) over all scores (soft movement only; else 0)."""
        first = next(iter(self.groups.values())).scores
        if self.state.method != "sigmoid" or self.state.lam == 0:
            return first.new_zeros(())
        scores = torch.cat([g.scores.flatten() for g in self.groups.values()])
        return self.state.lam * torch.sigmoid(scores).mean()

    def mask_density(self) -> float:
        """Share of mask entries (blocks, heads, neurons) that are on."""
        masks = [g.hard_mask().flatten() for g in self.groups.values()]
        return float(torch.cat(masks).mean())

    def bake(self) -> None:
        """Remove the parametrizations, leaving the masked weights (zeros included) in place."""
        for linear in self.linears.values():
            if parametrize.is_parametrized(linear, "weight"):
                parametrize.remove_parametrizations(linear, "weight", leave_parametrized=True)
        self.linears.clear()


def prunable_linears(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    layout = architecture_of(model)
    for i, layer in enumerate(encoder_layers(model)):
        for path in (layout.query, layout.key, layout.value, layout.attn_out, layout.ffn_in,
                     layout.ffn_out):
            yield f"{layout.layers}.{i}.{path}", get_module(layer, path)
