"""What to prune and how fast (the `prune` step's settings)."""

from __future__ import annotations

from dataclasses import dataclass, field

from slimformer.errors import fail

METHODS = ("magnitude", "topk", "sigmoid")


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
