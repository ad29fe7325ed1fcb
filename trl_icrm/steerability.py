# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Steerability evaluation of reward models: accuracy vs number of demonstrations, calibration, conflict trade-offs.

Given pairs with a group (an objective, a user, a task) and, per group, a pool of demonstrations:

- [`accuracy_vs_k`]: pairwise accuracy of an ICRM model with K in-context demonstrations of the pair's own group,
  over several random draws of the demonstrations (mean and a Student-t confidence interval over draws);
- [`bt_accuracy`]: the same pairs under a conventional reward model (no context: one number per group);
- calibration: [`trl_icrm.metrics.expected_calibration_error`] and [`trl_icrm.metrics.reliability_bins`] of the
  posterior mean, over both orders of every pair;
- [`mixing_front`]: for two groups A and B, contexts of K demonstrations of which a share w comes from A, traced as
  (accuracy on A, accuracy on B) points, with the [`hypervolume_2d`] of their Pareto front.

[`evaluate_steerability`] runs all of it and writes JSON, CSV and PNG plots. Pair probabilities come from
[`pair_probabilities`] (an [`trl_icrm.ICRMReward`]: mu = sigmoid(r_chosen - r_rejected) with the same demonstrations
on both sides) and [`bt_pair_probabilities`] (any TRL reward function: sigmoid of the score difference).

Example:

```python
>>> from trl_icrm.steerability import hypervolume_2d
>>> round(hypervolume_2d([(0.9, 0.2), (0.6, 0.6), (0.2, 0.9)]), 6)  # 0.9 * 0.2 + 0.6 * 0.4 + 0.2 * 0.3
0.48

```
"""

from __future__ import annotations

import csv
import os
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats

from .metrics import expected_calibration_error, reliability_bins
from .reporting import write_json


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


def both_orders(probabilities: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, outcomes) over both orders of each pair (chosen first: outcome 1; swapped: 1 - p, outcome 0)."""
    probabilities = probabilities.double().flatten()
    return torch.cat([probabilities, 1 - probabilities]), torch.cat(
        [torch.ones_like(probabilities), torch.zeros_like(probabilities)]
    )


# Demonstrations
def demonstration_pools(pairs: Iterable[Pair], group_column: str = "group") -> dict[str, list[dict[str, Any]]]:
    """Demonstrations `{prompt, chosen, rejected}` by group."""
    pools: dict[str, list[dict[str, Any]]] = {}
    for pair in pairs:
        pools.setdefault(pair[group_column], []).append(
            {"prompt": pair["prompt"], "chosen": pair["chosen"], "rejected": pair["rejected"]}
        )
    return pools


def draw_mixed(pools: Sequence[Sequence[Pair]], counts: Sequence[int], rng: np.random.Generator) -> list[Pair]:
    """`counts[i]` demonstrations drawn without replacement from `pools[i]`, in a random order."""
    drawn: list[Pair] = []
    for pool, count in zip(pools, counts, strict=True):
        if count > len(pool):
            raise ValueError(f"Cannot draw {count} demonstrations from a pool of {len(pool)}.")
        drawn += [pool[j] for j in rng.choice(len(pool), size=count, replace=False)]
    return [drawn[j] for j in rng.permutation(len(drawn))]


def _rng(seed: int, *keys: Any) -> np.random.Generator:
    return np.random.default_rng([seed] + [zlib.crc32(repr(key).encode()) for key in keys])


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
        rewards, _, _ = reward.posterior(prompts, completions, **columns)
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
            draw_mixed([pools[p[group_column]]], [k], _rng(seed, "k", k, draw, i)) if k else []
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


def bt_accuracy(reward_func, pairs: Sequence[Pair], group_column: str = "group") -> dict[str, float]:
    """Accuracy of a context-free reward model per group."""
    mu = bt_pair_probabilities(reward_func, pairs)
    out = {}
    for group in sorted({p[group_column] for p in pairs}):
        mask = torch.tensor([p[group_column] == group for p in pairs])
        out[group] = (mu[mask] > 0.5).float().mean().item()
    return out


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
                    draw_mixed([pool_a, pool_b], [k_a, k - k_a], _rng(seed, "mix", w, draw, name, i))
                    for i in range(len(pairs))
                ]
                mu = pair_probabilities(reward, pairs, demos)
                accuracies[name].append((mu > 0.5).float().mean().item())
        points.append(
            {"w": w, "accuracy_a": float(np.mean(accuracies["a"])), "accuracy_b": float(np.mean(accuracies["b"]))}
        )
    xy = [(p["accuracy_a"], p["accuracy_b"]) for p in points]
    return {"points": points, "front": pareto_front(xy), "hypervolume": hypervolume_2d(xy)}


# Reporting
def _write_csv(rows: Sequence[Mapping[str, Any]], path: str) -> str:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(fig, ax, path: str, xlabel: str, ylabel: str, title: str, legend_loc: str, unit_square: bool = True):
    if unit_square:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc=legend_loc)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)
    return path


def plot_accuracy_vs_k(
    summary: Mapping[str, Mapping[int, Mapping[str, float]]],
    path: str,
    bt: Mapping[str, float] | None = None,
    title: str = "Accuracy vs number of demonstrations",
) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for i, (group, by_k) in enumerate(sorted(summary.items())):
        ks = sorted(by_k)
        means = [by_k[k]["mean"] for k in ks]
        errors = [[by_k[k]["mean"] - by_k[k]["low"] for k in ks], [by_k[k]["high"] - by_k[k]["mean"] for k in ks]]
        color = f"C{i}"
        ax.errorbar(ks, means, yerr=errors, marker="o", capsize=3, color=color, label=f"ICRM: {group}")
        if bt is not None and group in bt:
            ax.axhline(bt[group], color=color, linestyle="--", linewidth=1, label=f"BT: {group}")
    ax.axhline(0.5, color="grey", linewidth=0.5)
    ax.set_xscale("symlog", linthresh=1)
    all_ks = sorted({k for by_k in summary.values() for k in by_k})
    ax.set_xticks(all_ks)
    ax.set_xticklabels([str(k) for k in all_ks])
    ax.set_ylim(0, 1)
    xlabel, ylabel = "demonstrations in context (K)", "pairwise accuracy (95% CI over draws)"
    return _finish(fig, ax, path, xlabel, ylabel, title, "lower right", unit_square=False)


def plot_reliability(bins: Sequence[Mapping[str, float]], path: str, ece: float, title: str) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.plot([0, 1], [0, 1], color="grey", linewidth=0.8, label="perfect calibration")
    ax.bar(
        [(b["lower"] + b["upper"]) / 2 for b in bins],
        [b["frequency"] for b in bins],
        width=[b["upper"] - b["lower"] for b in bins],
        edgecolor="black",
        alpha=0.6,
        label="observed frequency",
    )
    ax.plot([b["confidence"] for b in bins], [b["frequency"] for b in bins], "o", color="C3", label="bin mean")
    xlabel, ylabel = "predicted P(first preferred)", "frequency first preferred"
    return _finish(fig, ax, path, xlabel, ylabel, f"{title} (ECE {ece:.3f})", "upper left")


def plot_front(
    mixing: Mapping[str, Any], path: str, groups: Sequence[str], bt_point: Sequence[float] | None = None
) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    xs = [p["accuracy_a"] for p in mixing["points"]]
    ys = [p["accuracy_b"] for p in mixing["points"]]
    ax.plot(xs, ys, "o-", color="C0", label=f"ICRM, mixed contexts (HV {mixing['hypervolume']:.3f})")
    for p in mixing["points"]:
        ax.annotate(
            f"w={p['w']:g}", (p["accuracy_a"], p["accuracy_b"]), fontsize=7, xytext=(4, 4), textcoords="offset points"
        )
    if bt_point is not None:
        ax.plot([bt_point[0]], [bt_point[1]], "s", color="C1", label=f"BT (HV {hypervolume_2d([bt_point]):.3f})")
    xlabel, ylabel = f"accuracy on {groups[0]}", f"accuracy on {groups[1]}"
    return _finish(fig, ax, path, xlabel, ylabel, f"w = share of {groups[0]} demonstrations", "lower left")


def evaluate_steerability(
    reward,
    eval_sets: Mapping[str, tuple[Sequence[Pair], Mapping[str, Sequence[Pair]]]],
    output_dir: str,
    bt_reward: Callable[..., list[float]] | None = None,
    ks: Sequence[int] = (0, 1, 2, 4, 8),
    num_draws: int = 5,
    conflict: tuple[str, str] | None = None,
    conflict_set: str | None = None,
    ratios: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    mix_k: int = 8,
    mix_draws: int = 3,
    ece_bins: int = 10,
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> dict[str, Any]:
    """Run every evaluation on each named evaluation set `(pairs, pools)` and write `steerability.json`,
    `accuracy_vs_k.csv`, `accuracy_vs_k_<set>.png`, `reliability_<set>.png` and, with `conflict=(A, B)` (groups of
    `conflict_set`), `conflict_front.png`. Returns the results written to JSON."""
    os.makedirs(output_dir, exist_ok=True)
    results: dict[str, Any] = {"ks": list(ks), "num_draws": num_draws, "seed": seed, "sets": {}}
    csv_rows = []
    for name, (pairs, pools) in eval_sets.items():
        curve = accuracy_vs_k(reward, pairs, pools, ks, num_draws, seed, progress=progress)
        bt = bt_accuracy(bt_reward, pairs) if bt_reward is not None else None
        calibration = {}
        for k, mu in curve["probabilities"].items():
            probabilities, outcomes = both_orders(mu)
            calibration[k] = {
                "ece": expected_calibration_error(probabilities, outcomes, ece_bins),
                "bins": reliability_bins(probabilities, outcomes, ece_bins),
            }
        k_max = max(ks)
        plot_accuracy_vs_k(
            curve["summary"], os.path.join(output_dir, f"accuracy_vs_k_{name}.png"), bt, f"Accuracy vs K ({name})"
        )
        plot_reliability(
            calibration[k_max]["bins"],
            os.path.join(output_dir, f"reliability_{name}.png"),
            calibration[k_max]["ece"],
            f"ICRM, K={k_max} ({name})",
        )
        overall = {}
        for k in ks:
            values = [
                np.mean([r["accuracy"] for r in curve["rows"] if r["k"] == k and r["draw"] == d])
                for d in sorted({r["draw"] for r in curve["rows"] if r["k"] == k})
            ]
            overall[k] = dict(zip(("mean", "low", "high"), mean_confidence_interval(values), strict=True))
        results["sets"][name] = {
            "num_pairs": len(pairs),
            "summary": curve["summary"],
            "mean_over_groups": overall,
            "bt": bt,
            "calibration": calibration,
        }
        csv_rows += [{"set": name, **row} for row in curve["rows"]]
    _write_csv(csv_rows, os.path.join(output_dir, "accuracy_vs_k.csv"))
    if conflict is not None:
        conflict_set = conflict_set or next(iter(eval_sets))
        pairs, pools = eval_sets[conflict_set]
        a, b = conflict
        pairs_a = [p for p in pairs if p["group"] == a]
        pairs_b = [p for p in pairs if p["group"] == b]
        mixing = mixing_front(reward, pairs_a, pairs_b, pools[a], pools[b], ratios, mix_k, mix_draws, seed)
        bt_point = None
        if bt_reward is not None:
            bt_groups = results["sets"][conflict_set]["bt"]  # the same pairs, already scored
            bt_point = (bt_groups[a], bt_groups[b])
            mixing["bt_point"] = list(bt_point)
            mixing["bt_hypervolume"] = hypervolume_2d([bt_point])
        plot_front(mixing, os.path.join(output_dir, "conflict_front.png"), conflict, bt_point)
        results["conflict"] = {"groups": list(conflict), "set": conflict_set, **mixing}
    write_json(results, os.path.join(output_dir, "steerability.json"))
    return results


__all__ = [
    "accuracy_vs_k",
    "both_orders",
    "bt_accuracy",
    "bt_pair_probabilities",
    "demonstration_pools",
    "draw_mixed",
    "evaluate_steerability",
    "hypervolume_2d",
    "mean_confidence_interval",
    "mixing_front",
    "pair_probabilities",
    "pareto_front",
    "plot_accuracy_vs_k",
    "plot_front",
    "plot_reliability",
]
