"""The pruning trainer: distillation's trainer that moves the pruner's schedule and trains
its scores."""

from __future__ import annotations

from typing import Any

import torch
from torch import distributed as dist
from transformers import Trainer, TrainerCallback

from slimformer.compression.pruning.masks import Pruner
from slimformer.training.distill import DistillationTrainer


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

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        # DDP averages the gradients of the model it wraps; the scores live in the pruner,
        # outside it, so without this every rank would learn its own masks. Averaging after
        # each micro-batch is exact under gradient accumulation too (the mean is linear).
        if self.args.world_size > 1:
            average_gradients(list(self.pruner.parameters()))
        return loss

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


def average_gradients(params: list[torch.nn.Parameter]) -> None:
    """Mean of the parameters' gradients over all ranks (one flat all-reduce)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for grad in grads:
        grad.copy_(flat[offset:offset + grad.numel()].view_as(grad))
        offset += grad.numel()


def ranks_disagree(pruner: torch.nn.Module) -> float:
    """Largest score difference between this rank and rank 0 over all ranks (0 when alone):
    a non-zero value means the ranks would keep different heads and neurons."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 0.0
    mine = torch.cat([p.detach().flatten() for p in pruner.parameters()])
    first = mine.clone()
    dist.broadcast(first, src=0)
    gap = (mine - first).abs().max()
    dist.all_reduce(gap, op=dist.ReduceOp.MAX)
    return float(gap)
