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
zeros in them, and `slimformer.prune_compact.compact` deletes empty heads and neurons.

nn_pruning's names, for those who know it: "topK" = `topk`, "sigmoied_threshold" = `sigmoid`,
"magnitude" = `magnitude`; attention_block_rows/cols = `attention_block: "32x32"`,
dense_block_rows/cols = 1 = per-neuron FFN pruning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize
from transformers import Trainer, TrainerCallback

from slimformer.distill import DistillationTrainer
from slimformer.errors import fail

METHODS = ("magnitude", "topk", "sigmoid")


# --------------------------------------------------------------------------- settings


@dataclass
class PruningArguments:
    """What to prune and how fast (the recipe's `prune_*.yaml` sets these)."""

    pruning_method: str = field(default="sigmoid", metadata={
        "help": "magnitude | topk (movement, hard top-k) | sigmoid (soft movement: "
                "sigmoid(S) > tau with L1 regularisation)"})
    final_sparsity: float = field(default=0.5, metadata={
        "help": "fraction of blocks/neurons masked at the end (magnitude and topk), in [0, 1)"})
    initial_sparsity: float = field(default=0.0, metadata={"help": "s_i of the cubic schedule"})
    final_threshold: float = field(default=0.1, metadata={
        "help": "sigmoid: tau at the end of the schedule (ramped from 0), in (0, 1)"})
    regularization_lambda: float = field(default=10.0, metadata={
        "help": "sigmoid: final weight of the L1 term mean(sigmoid(S)) (ramped from 0)"})
    attention_block: str = field(default="32x32", metadata={
        "help": "attention mask granularity: ROWSxCOLS blocks, or `head`"})
    prune_attention: bool = field(default=True, metadata={"help": "mask attention weights"})
    prune_ffn: bool = field(default=True, metadata={"help": "mask feed-forward neurons"})
    warmup_fraction: float = field(default=0.1, metadata={
        "help": "fraction of training steps before pruning starts (t0)"})
    cooldown_fraction: float = field(default=0.3, metadata={
        "help": "fraction of training steps at the final value at the end"})
    scores_learning_rate: float = field(default=1e-2, metadata={
        "help": "learning rate of the mask scores (nn_pruning: mask_scores_learning_rate)"})
    score_init: float = field(default=0.0, metadata={"help": "initial value of every score"})

    def __post_init__(self) -> None:
        check_settings(self)


def check_settings(args: PruningArguments) -> None:
    if args.pruning_method not in METHODS:
        fail(f"unknown pruning_method {args.pruning_method!r}; choose one of "
             f"{', '.join(METHODS)}")
    for name in ("final_sparsity", "initial_sparsity"):
        value = getattr(args, name)
        if not 0.0 <= value < 1.0:
            fail(f"{name} must be in [0, 1), got {value}")
    if not 0.0 < args.final_threshold < 1.0:
        fail(f"final_threshold must be in (0, 1), got {args.final_threshold}")
    if args.regularization_lambda < 0:
        fail(f"regularization_lambda must be >= 0, got {args.regularization_lambda}")
    if not (0 <= args.warmup_fraction and 0 <= args.cooldown_fraction
            and args.warmup_fraction + args.cooldown_fraction < 1):
        fail("warmup_fraction and cooldown_fraction must be >= 0 and sum to less than 1, got "
             f"{args.warmup_fraction} and {args.cooldown_fraction}")
    parse_block(args.attention_block)


def parse_block(text: str) -> tuple[int, int] | None:
    """`"32x32"` -> (32, 32); `"head"` -> None (one score per attention head)."""
    if text == "head":
        return None
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        fail(f"attention_block must be ROWSxCOLS (e.g. 32x32) or 'head', got {text!r}")
    return int(parts[0]), int(parts[1])


# --------------------------------------------------------------------------- schedule


def cubic_schedule(step: int, total_steps: int, initial: float, final: float,
                   warmup_steps: int = 0, cooldown_steps: int = 0) -> float:
    """s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (N * dt))^3, clamped to [t0, t0 + N*dt]."""
    ramp = max(total_steps - warmup_steps - cooldown_steps, 1)  # N * dt
    progress = min(max((step - warmup_steps) / ramp, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


# --------------------------------------------------------------------------- layouts


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


LAYOUTS = {
    "bert": Layout(layers="encoder.layer", attention="attention",
                   query="attention.self.query", key="attention.self.key",
                   value="attention.self.value", attn_out="attention.output.dense",
                   ffn_in="intermediate.dense", ffn_out="output.dense",
                   heads_config="num_attention_heads", act_config="hidden_act",
                   ffn_config="intermediate_size"),
    "distilbert": Layout(layers="transformer.layer", attention="attention",
                         query="attention.q_lin", key="attention.k_lin",
                         value="attention.v_lin", attn_out="attention.out_lin",
                         ffn_in="ffn.lin1", ffn_out="ffn.lin2",
                         heads_config="n_heads", act_config="activation",
                         ffn_config="hidden_dim"),
}


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


# --------------------------------------------------------------------------- masks


@dataclass
class PruneState:
    """The schedule's current values, shared by every score group."""

    method: str
    sparsity: float = 0.0
    threshold: float = 0.0
    lam: float = 0.0


def schedule_state(args: PruningArguments, step: int, total_steps: int) -> PruneState:
    """Sparsity (magnitude, topk), threshold tau and L1 lambda (sigmoid) at `step`."""
    warmup = int(args.warmup_fraction * total_steps)
    cooldown = int(args.cooldown_fraction * total_steps)
    ramp = 1.0 - cubic_schedule(step, total_steps, 1.0, 0.0, warmup, cooldown)  # 0 -> 1
    sparsity = cubic_schedule(step, total_steps, args.initial_sparsity, args.final_sparsity,
                              warmup, cooldown)
    return PruneState(args.pruning_method, sparsity, args.final_threshold * ramp,
                      args.regularization_lambda * ramp)


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
        layout = layout_of(model)
        block = parse_block(args.attention_block)
        self.step(0, 1)  # masks at s_i before training starts
        for i, layer in enumerate(encoder_layers(model)):
            prefix = f"{layout.layers}.{i}"
            if args.prune_attention:
                self.add_attention(layer, layout, prefix, block, head_size(model))
            if args.prune_ffn:
                self.add_ffn(layer, layout, prefix)
        if not self.groups:
            fail("nothing to prune: both prune_attention and prune_ffn are off")

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

    def add_attention(self, layer: nn.Module, layout: Layout, prefix: str,
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

    def add_ffn(self, layer: nn.Module, layout: Layout, prefix: str) -> None:
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
    layout = layout_of(model)
    for i, layer in enumerate(encoder_layers(model)):
        for path in (layout.query, layout.key, layout.value, layout.attn_out, layout.ffn_in,
                     layout.ffn_out):
            yield f"{layout.layers}.{i}.{path}", get_module(layer, path)


# --------------------------------------------------------------------------- training


class PruningCallback(TrainerCallback):
    """Moves the schedule before each training step."""

    def __init__(self, pruner: Pruner):
        self.pruner = pruner

    def on_step_begin(self, args, state, control, **kwargs):
        self.pruner.step(state.global_step, max(state.max_steps, 1))


class PruningTrainer(DistillationTrainer):
    """DistillationTrainer (hard labels, plus a teacher when given: cached logits in the
    batch or `teacher_model`, weighted by the arguments' `alpha` and `temperature`) that
    also learns the mask scores, moves the schedule each step and adds the L1 term."""

    def __init__(self, *args: Any, pruner: Pruner, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.pruner = pruner.to(self.args.device)
        self.add_callback(PruningCallback(pruner))

    def create_optimizer(self):
        """Weights as the Trainer groups them; scores apart (own lr, no decay)."""
        if self.optimizer is None:
            decay = set(self.get_decay_parameter_names(self.model))
            params = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
            groups = [
                {"params": [p for n, p in params if n in decay],
                 "weight_decay": self.args.weight_decay},
                {"params": [p for n, p in params if n not in decay], "weight_decay": 0.0},
            ]
            if self.pruner.args.pruning_method != "magnitude":  # magnitude learns no score
                groups.append({"params": list(self.pruner.parameters()), "weight_decay": 0.0,
                               "lr": self.pruner.args.scores_learning_rate})
            optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(self.args,
                                                                         self.model)
            self.optimizer = optimizer_cls([g for g in groups if g["params"]], **kwargs)
        return self.optimizer

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        if "loss" in logs:  # training logs also show the schedule and the masks' density
            s = self.pruner.state
            logs.update({"prune_sparsity_target": round(s.sparsity, 4),
                         "prune_threshold": round(s.threshold, 4),
                         "prune_lambda": round(s.lam, 4),
                         "prune_mask_density": round(self.pruner.mask_density(), 4)})
        super().log(logs, *args, **kwargs)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True,
                                             num_items_in_batch=num_items_in_batch)
        if model.training:
            loss = loss + self.pruner.regularization()
            outputs.loss = loss
        return (loss, outputs) if return_outputs else loss


def schedule_points(args: PruningArguments, total_steps: int,
                    points: int = 200) -> dict[str, list[float]]:
    """The schedule over a run (for the plot), sampled at `points` steps."""
    steps = sorted({round(i * total_steps / (points - 1)) for i in range(points)})
    curves: dict[str, list[float]] = {"step": [], "sparsity": [], "threshold": [], "lambda": []}
    for step in steps:
        state = schedule_state(args, step, total_steps)
        curves["step"].append(step)
        curves["sparsity"].append(state.sparsity)
        curves["threshold"].append(state.threshold)
        curves["lambda"].append(state.lam)
    return curves


def plot_schedule(args: PruningArguments, total_steps: int, path: Any,
                  log_history: list[dict[str, Any]] | None = None) -> None:
    """PNG of the schedule, with the measured mask density from training logs if given."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = schedule_points(args, total_steps)
    fig, ax = plt.subplots(figsize=(7, 4))
    if args.pruning_method == "sigmoid":
        ax.plot(curves["step"], curves["threshold"], label="threshold tau")
        ax2 = ax.twinx()
        ax2.plot(curves["step"], curves["lambda"], color="tab:red", label="L1 lambda")
        ax2.set_ylabel("lambda")
        ax2.legend(loc="center right")
    else:
        ax.plot(curves["step"], curves["sparsity"], label="target sparsity (cubic)")
    logged = [(h["step"], 1 - h["prune_mask_density"]) for h in log_history or []
              if "prune_mask_density" in h]
    if logged:
        ax.plot(*zip(*logged), "o", markersize=3, label="measured mask sparsity")
    ax.set_xlabel("training step")
    ax.set_ylabel("sparsity / threshold")
    ax.set_title(f"{args.pruning_method} pruning schedule")
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
