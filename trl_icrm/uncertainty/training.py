# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Training a [`~trl_icrm.uncertainty.HeadEnsemble`] on precomputed features with the Bradley-Terry loss.

Every member minimizes its own per-example mean BT loss, -log sigmoid(r(chosen) - r(rejected)); the members' losses
are summed, so each member's gradient is exactly the one it would get trained alone, and they train jointly in one
optimizer (AdamW, per-parameter state) on the same minibatches. Members differ by their initialisations and,
with `bootstrap=True`, by their data: member m weights each pair by how often a bootstrap resample (with
replacement, from the generator seeded by `(seed, m)`) draws it.

Example:

```python
>>> import torch
>>> from trl_icrm.uncertainty import HeadEnsemble, HeadEnsembleConfig, train_head_ensemble
>>> heads = HeadEnsemble(HeadEnsembleConfig(hidden_size=4, num_members=2, head_type="linear"))
>>> chosen, rejected = torch.randn(32, 4) + 1, torch.randn(32, 4)
>>> history = train_head_ensemble(heads, chosen, rejected, num_epochs=5)
>>> len(history)
5

```
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .heads import HeadEnsemble


@dataclass
class HeadTrainingArguments:
    """Optimization of a head ensemble (the `trl-icrm train` values are read from its training arguments)."""

    num_epochs: float = 1.0
    max_steps: int = -1
    batch_size: int = 32
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    bootstrap: bool = False
    seed: int = 0


def bootstrap_weights(num_pairs: int, num_members: int, seed: int) -> torch.Tensor:
    """`(num_pairs, num_members)` counts: how often member m's bootstrap resample of the pairs draws each pair."""
    columns = []
    for member in range(num_members):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + member + 7919)
        draws = torch.randint(num_pairs, (num_pairs,), generator=generator)
        columns.append(torch.bincount(draws, minlength=num_pairs).float())
    return torch.stack(columns, dim=1)


def pair_losses(heads: HeadEnsemble, chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """Per pair and member BT losses `(batch, M)`: -log sigmoid(r(chosen) - r(rejected))."""
    return -F.logsigmoid(heads(chosen) - heads(rejected))


def _steps(num_pairs: int, args: HeadTrainingArguments) -> int:
    per_epoch = -(-num_pairs // args.batch_size)
    return args.max_steps if args.max_steps > 0 else max(1, round(args.num_epochs * per_epoch))


def train_head_ensemble(
    heads: HeadEnsemble,
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    args: HeadTrainingArguments | None = None,
    **overrides,
) -> list[dict[str, float]]:
    """Train `heads` in place on pairs of features `chosen`, `rejected` `(num_pairs, hidden)`.

    Args:
        heads: The ensemble (on the device of the features).
        chosen, rejected: Features of each pair's sides.
        args: [`HeadTrainingArguments`]; keyword `overrides` replace its fields.

    Returns:
        One record per epoch (a partial last one included): `epoch`, `step`, and `loss`, the per-example mean BT
        loss over the epoch's pairs and all members (bootstrap-weighted).
    """
    args = HeadTrainingArguments(**{**(args.__dict__ if args is not None else {}), **overrides})
    if chosen.shape != rejected.shape or chosen.ndim != 2 or not len(chosen):
        raise ValueError(
            f"chosen and rejected must be (num_pairs, hidden) of one shape, got {chosen.shape}, {rejected.shape}."
        )
    if args.batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {args.batch_size}.")
    num_pairs, members = len(chosen), heads.num_members
    weights = bootstrap_weights(num_pairs, members, args.seed) if args.bootstrap else torch.ones(num_pairs, members)
    optimizer = torch.optim.AdamW(heads.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    total, step, history = _steps(num_pairs, args), 0, []
    heads.train()
    while step < total:
        loss_sum, weight_sum = 0.0, 0.0
        for batch in torch.randperm(num_pairs, generator=generator).split(args.batch_size):
            w = weights[batch].to(chosen.device)
            losses = pair_losses(heads, chosen[batch], rejected[batch]) * w
            member_means = losses.sum(0) / w.sum(0).clamp_min(1.0)  # each member's per-example mean on this batch
            optimizer.zero_grad()
            member_means.sum().backward()
            optimizer.step()
            loss_sum, weight_sum = loss_sum + losses.sum().item(), weight_sum + w.sum().item()
            step += 1
            if step >= total:
                break
        history.append({"epoch": len(history) + 1, "step": step, "loss": loss_sum / max(weight_sum, 1.0)})
    heads.eval()
    return history


@torch.no_grad()
def pairwise_metrics(heads: HeadEnsemble, chosen: torch.Tensor, rejected: torch.Tensor) -> dict[str, object]:
    """Per-example held-out metrics: accuracy of the members' mean reward, each member's accuracy, the mean BT loss
    of the mean reward, and the mean variance of the members' reward margins."""
    margins = heads(chosen) - heads(rejected)  # (n, M)
    mean_margin = margins.mean(1)
    return {
        "num_pairs": len(margins),
        "accuracy": (mean_margin > 0).float().mean().item(),
        "member_accuracy": (margins > 0).float().mean(0).tolist(),
        "loss": (-F.logsigmoid(mean_margin)).mean().item(),
        "margin_variance": margins.var(1, unbiased=False).mean().item(),
    }


__all__ = ["HeadTrainingArguments", "bootstrap_weights", "pair_losses", "pairwise_metrics", "train_head_ensemble"]
