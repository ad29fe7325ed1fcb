# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Steerability evaluation of reward models: accuracy vs number of demonstrations, calibration, conflict trade-offs.

Given pairs with a group (an objective, a user, a task) and, per group, a pool of demonstrations:

- [`accuracy_vs_k`]: pairwise accuracy of an ICRM model with K in-context demonstrations of the pair's own group,
  over several random draws of the demonstrations (mean and a Student-t confidence interval over draws);
- [`bt_accuracy`]: the same pairs under a conventional reward model (no context: one number per group);
- calibration: [`trl_icrm.evaluation.calibration.expected_calibration_error`] and [`trl_icrm.evaluation.calibration.reliability_bins`] of the
  posterior mean, over both orders of every pair;
- [`mixing_front`]: for two groups A and B, contexts of K demonstrations of which a share w comes from A, traced as
  (accuracy on A, accuracy on B) points, with the [`hypervolume_2d`] of their Pareto front.

`trl_icrm.experiments.steerability_report.evaluate_steerability` runs all of it and writes JSON, CSV and PNG plots. Pair probabilities come from
[`pair_probabilities`] (an [`trl_icrm.ICRMReward`]: mu = sigmoid(r_chosen - r_rejected) with the same demonstrations
on both sides) and [`bt_pair_probabilities`] (any TRL reward function: sigmoid of the score difference).

Example:

```python
>>> from trl_icrm.evaluation.steerability import hypervolume_2d
>>> round(hypervolume_2d([(0.9, 0.2), (0.6, 0.6), (0.2, 0.9)]), 6)  # 0.9 * 0.2 + 0.6 * 0.4 + 0.2 * 0.3
0.48

```
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats

from ..demonstrations import DemonstrationBank, draw_mixed, seeded_rng


Pair = Mapping[str, Any]
"""A preference pair: `prompt`, `chosen`, `rejected` (standard or conversational) and a `group`."""


# Pure math
def hypervolume_2d(points: Iterable[Sequence[float]], reference: Sequence[float] = (0.0, 0.0)) -> float:
    """Area dominated by `points` (both coordinates maximized) above the `reference` point."""
    rx, ry = reference
    front = pareto_front(points)
    area, previous_y = 0.0, ry
    for x, y in sorted(front, key=lambda p: -p[0]):  # x decreasing, so y increasing along the front
        if x > rx and y > previous_y:
            area += (x - rx) * (y - previous_y)
            previous_y = y
    return area


def pareto_front(points: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
    """The points no other point dominates (>= on both coordinates, > on one), sorted by the first coordinate."""
    points = [(float(x), float(y)) for x, y in points]
    front = []
    for p in points:
        dominated = any(q[0] >= p[0] and q[1] >= p[1] and (q[0] > p[0] or q[1] > p[1]) for q in points)
        if not dominated and p not in front:
            front.append(p)
    return sorted(front)


def mean_confidence_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): a Student-t interval for the mean of `values` (a point when there is a single value)."""
    values = np.asarray(values, dtype=float)
    mean = float(values.mean())
    if len(values) < 2 or float(values.std()) == 0.0:
        return mean, mean, mean
    low, high = stats.t.interval(level, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def bootstrap_accuracy(
    correct: Any, num_resamples: int = 2000, level: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of `correct` (0/1 of shape [draws, pairs], or [pairs]) and a percentile bootstrap interval that resamples
    both the pairs and the draws with replacement: the spread of accuracy over pairs *and* demonstration draws."""
    correct = np.atleast_2d(np.asarray(correct, dtype=float))
    num_draws, num_pairs = correct.shape
    mean = float(correct.mean()) if correct.size else float("nan")
    if num_pairs < 2:
        return {"mean": mean, "low": mean, "high": mean, "n": num_pairs}
    rng = np.random.default_rng(seed)
    resampled_pairs = rng.integers(0, num_pairs, size=(num_resamples, num_pairs))
    counts = np.stack([np.bincount(row, minlength=num_pairs) for row in resampled_pairs])
    by_draw = counts @ correct.T / num_pairs  # [resamples, draws]: each draw's accuracy on the resampled pairs
    draws = rng.integers(0, num_draws, size=(num_resamples, num_draws))
    resampled = np.take_along_axis(by_draw, draws, axis=1).mean(axis=1)
    low, high = np.quantile(resampled, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": mean, "low": float(low), "high": float(high), "n": num_pairs}


def has_conflicting_twin(pairs: Sequence[Pair], id_column: str = "pair_id") -> list[bool]:
    """Whether each pair has a twin (another pair with the same `id_column`, e.g. the same source pair under another
    objective) that prefers the opposite answer. Pairs without the column have none."""
    chosen_by_id: dict[Any, list[str]] = {}
    for pair in pairs:
        if pair.get(id_column) is not None:
            chosen_by_id.setdefault(pair[id_column], []).append(repr(pair["chosen"]))
    return [
        pair.get(id_column) is not None and repr(pair["rejected"]) in chosen_by_id[pair[id_column]] for pair in pairs
    ]


def both_orders(probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, outcomes) over both orders of each pair (chosen first: outcome 1; swapped: 1 - p, outcome 0)."""
    probabilities = probabilities.double().flatten()
    return torch.cat([probabilities, 1 - probabilities]), torch.cat(
        [torch.ones_like(probabilities), torch.zeros_like(probabilities)]
    )


# Demonstrations
def demonstration_pools(pairs: Iterable[Pair], group_column: str = "group") -> dict[str, list[dict[str, Any]]]:
    """Demonstrations `{prompt, chosen, rejected}` by group."""
    return DemonstrationBank.from_rows(pairs, group_column).groups


# Scoring
def _both_sides(pairs: Sequence[Pair]) -> tuple[list[Any], list[Any]]:
    """Prompts and completions of the pairs, chosen then rejected for each pair."""
    prompts = [p["prompt"] for p in pairs for _ in range(2)]
    completions = [p[side] for p in pairs for side in ("chosen", "rejected")]
    return prompts, completions


def pair_probabilities(
    reward, pairs: Sequence[Pair], demonstrations: Sequence[Sequence[Pair]], batch_pairs: int = 16
) -> torch.Tensor:
    """ICRM posterior mean P(chosen > rejected) of every pair with its demonstrations (the same on both sides)."""
    out = []
    for start in range(0, len(pairs), batch_pairs):
        prompts, completions = _both_sides(pairs[start : start + batch_pairs])
        demos = demonstrations[start : start + batch_pairs]
        columns = {reward.demonstrations_column: [list(d) for d in demos for _ in range(2)]}
        rewards, _, _ = reward.logits(prompts, completions, **columns)
        out.append(torch.sigmoid(rewards[0::2] - rewards[1::2]).float())
    return torch.cat(out) if out else torch.zeros(0)


def bt_pair_probabilities(reward_func: Callable[..., list[float]], pairs: Sequence[Pair], batch_pairs: int = 16):
    """sigmoid(score(chosen) - score(rejected)) of every pair under a TRL reward function (e.g. a BT model)."""
    out = []
    for start in range(0, len(pairs), batch_pairs):
        prompts, completions = _both_sides(pairs[start : start + batch_pairs])
        scores = torch.tensor(reward_func(prompts=prompts, completions=completions), dtype=torch.float)
        out.append(torch.sigmoid(scores[0::2] - scores[1::2]))
    return torch.cat(out) if out else torch.zeros(0)


# Evaluations
def accuracy_vs_k(
    reward,
    pairs: Sequence[Pair],
    pools: Mapping[str, Sequence[Pair]],
    ks: Sequence[int] = (0, 1, 2, 4, 8),
    num_draws: int = 5,
    seed: int = 0,
    group_column: str = "group",
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[str, Any]:
    """Accuracy of an ICRM model per group and K, over `num_draws` draws of demonstrations (one draw for K = 0).

    Returns `{"rows": [{group, k, draw, accuracy, n}], "summary": {group: {k: {mean, low, high}}},
    "probabilities": {k: tensor of P(chosen > rejected) over all groups and draws}}`.
    """
    groups = sorted({p[group_column] for p in pairs})
    missing = [g for g in groups if g not in pools and any(ks)]
    if missing:
        raise ValueError(f"No demonstration pool for groups {missing}.")
    masks = {group: torch.tensor([p[group_column] == group for p in pairs]) for group in groups}
    jobs = [(k, draw) for k in ks for draw in range(num_draws if k > 0 else 1)]
    rows, probabilities = [], {}
    for k, draw in progress(jobs) if progress else jobs:
        demos = [
            draw_mixed([pools[p[group_column]]], [k], seeded_rng(seed, "k", k, draw, i)) if k else []
            for i, p in enumerate(pairs)
        ]
        mu = pair_probabilities(reward, pairs, demos)
        probabilities.setdefault(k, []).append(mu)
        for group, mask in masks.items():
            rows.append(
                {
                    "group": group,
                    "k": k,
                    "draw": draw,
                    "accuracy": (mu[mask] > 0.5).float().mean().item(),
                    "n": int(mask.sum()),
                }
            )
    summary: dict[str, dict[int, dict[str, float]]] = {}
    for group in groups:
        for k in ks:
            values = [r["accuracy"] for r in rows if r["group"] == group and r["k"] == k]
            mean, low, high = mean_confidence_interval(values)
            summary.setdefault(group, {})[k] = {"mean": mean, "low": low, "high": high, "draws": len(values)}
    return {"rows": rows, "summary": summary, "probabilities": {k: torch.cat(v) for k, v in probabilities.items()}}


def accuracy_by_group(mu: torch.Tensor, pairs: Sequence[Pair], group_column: str = "group") -> dict[str, float]:
    """Accuracy (mu > 0.5) per group of pair probabilities `mu`."""
    out = {}
    for group in sorted({p[group_column] for p in pairs}):
        mask = torch.tensor([p[group_column] == group for p in pairs])
        out[group] = (mu[mask] > 0.5).float().mean().item()
    return out


def bt_accuracy(reward_func, pairs: Sequence[Pair], group_column: str = "group") -> dict[str, float]:
    """Accuracy of a context-free reward model per group."""
    return accuracy_by_group(bt_pair_probabilities(reward_func, pairs), pairs, group_column)


def mixing_front(
    reward,
    pairs_a: Sequence[Pair],
    pairs_b: Sequence[Pair],
    pool_a: Sequence[Pair],
    pool_b: Sequence[Pair],
    ratios: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    k: int = 8,
    num_draws: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """(accuracy on A, accuracy on B) of an ICRM model whose K demonstrations are round(w K) from A and the rest
    from B, for each ratio w, averaged over draws; with the Pareto front and its hypervolume (reference (0, 0))."""
    points = []
    for w in ratios:
        k_a = round(w * k)
        accuracies = {"a": [], "b": []}
        for draw in range(num_draws):
            for name, pairs in (("a", pairs_a), ("b", pairs_b)):
                demos = [
                    draw_mixed([pool_a, pool_b], [k_a, k - k_a], seeded_rng(seed, "mix", w, draw, name, i))
                    for i in range(len(pairs))
                ]
                mu = pair_probabilities(reward, pairs, demos)
                accuracies[name].append((mu > 0.5).float().mean().item())
        points.append(
            {"w": w, "accuracy_a": float(np.mean(accuracies["a"])), "accuracy_b": float(np.mean(accuracies["b"]))}
        )
    xy = [(p["accuracy_a"], p["accuracy_b"]) for p in points]
    return {"points": points, "front": pareto_front(xy), "hypervolume": hypervolume_2d(xy)}


__all__ = [
    "accuracy_by_group",
    "accuracy_vs_k",
    "bootstrap_accuracy",
    "has_conflicting_twin",
    "both_orders",
    "bt_accuracy",
    "bt_pair_probabilities",
    "demonstration_pools",
    "hypervolume_2d",
    "mean_confidence_interval",
    "mixing_front",
    "pair_probabilities",
    "pareto_front",
]
