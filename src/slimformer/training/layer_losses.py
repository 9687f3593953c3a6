"""Layer-wise distillation losses between a student cut from its teacher and that teacher.

A student built from teacher layers `layer_map` (e.g. [0, 2, 4]) has, for each of its layers
k, a teacher layer `layer_map[k]` of the same width and head count to imitate:

- hidden states (TinyBERT, Jiao et al. 2020): the MSE between the student's and the teacher's
  hidden states, embeddings included, over real (not padding) tokens;
- attention distributions (TinyBERT; MiniLM, Wang et al. 2020): the KL divergence from the
  teacher's attention distribution of each head and query token to the student's.

Both are 0 when the student is its teacher (the map keeps every layer) and positive otherwise.
"""

from __future__ import annotations

import torch

EPS = 1e-12  # attention probabilities of masked keys are exactly 0


def layer_pairs(layer_map: list[int]) -> list[tuple[int, int]]:
    """(student, teacher) indices into `hidden_states`: embeddings, then each kept layer."""
    return [(0, 0)] + [(k + 1, t + 1) for k, t in enumerate(layer_map)]


def hidden_loss(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...],
                layer_map: list[int], mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error per hidden unit over real tokens, averaged over the layer pairs."""
    weights = mask.unsqueeze(-1).to(student[0].dtype)
    units = weights.sum() * student[0].shape[-1]
    losses = [(((student[s] - teacher[t].to(student[s].dtype)) ** 2) * weights).sum() / units
              for s, t in layer_pairs(layer_map)]
    return torch.stack(losses).mean()


def attention_loss(student: tuple[torch.Tensor, ...], teacher: tuple[torch.Tensor, ...],
                   layer_map: list[int], mask: torch.Tensor) -> torch.Tensor:
    """KL(teacher || student) of each head's attention distribution per real query token,
    averaged over heads, tokens and layers."""
    queries = mask[:, None, :].to(student[0].dtype)  # (batch, 1, query)
    losses = []
    for k, t in enumerate(layer_map):
        p_teacher = teacher[t].to(student[k].dtype)
        kl = (p_teacher * (torch.log(p_teacher + EPS) - torch.log(student[k] + EPS))).sum(-1)
        losses.append((kl * queries).sum() / (queries.sum() * kl.shape[1]))
    return torch.stack(losses).mean()
