"""The cubic sparsity schedule, its state at a step, and its plot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slimformer.compression.pruning.args import PruningArguments


def cubic_schedule(step: int, total_steps: int, initial: float, final: float,
                   warmup_steps: int = 0, cooldown_steps: int = 0) -> float:
    """s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (N * dt))^3, clamped to [t0, t0 + N*dt]."""
    ramp = max(total_steps - warmup_steps - cooldown_steps, 1)  # N * dt
    progress = min(max((step - warmup_steps) / ramp, 0.0), 1.0)
    return final + (initial - final) * (1.0 - progress) ** 3


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
