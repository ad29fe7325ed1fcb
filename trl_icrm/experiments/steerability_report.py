# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The steerability report: runs the metrics of `trl_icrm.evaluation.steerability` on evaluation sets and writes
JSON, CSV and PNG plots (accuracy vs K, reliability diagrams, the conflict front).

Example:

```python
from trl_icrm import ICRMReward
from trl_icrm.experiments.steerability_report import evaluate_steerability

results = evaluate_steerability(ICRMReward("icrm-model", allow_zero_shot=True), eval_sets, "outputs/steerability")
```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..evaluation.calibration import expected_calibration_error, reliability_bins
from ..evaluation.steerability import (
    Pair,
    accuracy_by_group,
    accuracy_vs_k,
    bootstrap_accuracy,
    both_orders,
    bt_pair_probabilities,
    has_conflicting_twin,
    hypervolume_2d,
    mean_confidence_interval,
    mixing_front,
)
from ..utils.io import new_figure, save_figure, write_csv, write_json


def _finish(fig, ax, path: str, xlabel: str, ylabel: str, title: str, legend_loc: str, unit_square: bool = True):
    if unit_square:
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7, loc=legend_loc)
    return save_figure(fig, path)


def plot_accuracy_vs_k(
    summary: Mapping[str, Mapping[int, Mapping[str, float]]],
    path: str,
    bt: Mapping[str, float] | None = None,
    title: str = "Accuracy vs number of demonstrations",
) -> str:
    fig, ax = new_figure((6.4, 4.2))
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
    fig, ax = new_figure((4.4, 4.2))
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
    fig, ax = new_figure((4.8, 4.4))
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


def steerability_of_set(
    reward,
    pairs: Sequence[Pair],
    pools: Mapping[str, Sequence[Pair]],
    bt_reward: Callable[..., list[float]] | None = None,
    ks: Sequence[int] = (0, 1, 2, 4, 8),
    num_draws: int = 5,
    ece_bins: int = 10,
    seed: int = 0,
    progress: Callable[[Iterable], Iterable] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`(result, rows)` of one evaluation set (computation only): accuracy vs K by group and over groups (95% CI over
    draws), the BT model's accuracy, and the calibration of each K; `rows` are the accuracy per group, K and draw.
    `result["intervals"]` holds 95% bootstrap intervals over pairs and draws ([`bootstrap_accuracy`]) per group and
    K, over all pairs, and over the `conflicting` pairs (those with a twin preferring the other answer: the same
    source pair under an objective that disagrees, [`has_conflicting_twin`]), with the BT model's beside them."""
    curve = accuracy_vs_k(reward, pairs, pools, ks, num_draws, seed, progress=progress)
    calibration = {}
    for k, mu in curve["probabilities"].items():
        probabilities, outcomes = both_orders(mu)
        calibration[k] = {
            "ece": expected_calibration_error(probabilities, outcomes, ece_bins),
            "bins": reliability_bins(probabilities, outcomes, ece_bins),
        }
    overall = {}
    for k in ks:
        values = [
            np.mean([r["accuracy"] for r in curve["rows"] if r["k"] == k and r["draw"] == d])
            for d in sorted({r["draw"] for r in curve["rows"] if r["k"] == k})
        ]
        overall[k] = dict(zip(("mean", "low", "high"), mean_confidence_interval(values), strict=True))
    bt_mu = bt_pair_probabilities(bt_reward, pairs) if bt_reward is not None else None
    result = {
        "num_pairs": len(pairs),
        "summary": curve["summary"],
        "mean_over_groups": overall,
        "bt": accuracy_by_group(bt_mu, pairs) if bt_mu is not None else None,
        "calibration": calibration,
        "intervals": accuracy_intervals(curve["probabilities"], bt_mu, pairs, seed),
    }
    return result, curve["rows"]


def accuracy_intervals(
    probabilities: Mapping[int, Any], bt_mu: Any | None, pairs: Sequence[Pair], seed: int = 0
) -> dict[str, dict[str, Any]]:
    """`{subset: {k: bootstrap_accuracy, "bt": ...}}` for each group, `all` pairs and the `conflicting` pairs (where
    there are any): ICRM's correctness per draw and pair at each K (`probabilities[k]`: the draws one after another)."""
    masks = {group: np.array([p["group"] == group for p in pairs]) for group in sorted({p["group"] for p in pairs})}
    masks["all"] = np.ones(len(pairs), dtype=bool)
    conflicting = np.array(has_conflicting_twin(pairs), dtype=bool)
    if conflicting.any():
        masks["conflicting"] = conflicting
    out: dict[str, dict[str, Any]] = {}
    for name, mask in masks.items():
        out[name] = {}
        for k, mu in probabilities.items():
            correct = (mu.reshape(-1, len(pairs)) > 0.5).numpy()[:, mask]
            out[name][k] = bootstrap_accuracy(correct, seed=seed)
        if bt_mu is not None:
            out[name]["bt"] = bootstrap_accuracy((bt_mu > 0.5).numpy()[mask], seed=seed)
    return out


def conflict_front(
    reward,
    pairs: Sequence[Pair],
    pools: Mapping[str, Sequence[Pair]],
    conflict: tuple[str, str],
    bt: Mapping[str, float] | None = None,
    ratios: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0),
    mix_k: int = 8,
    mix_draws: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """The front of contexts mixing the demonstrations of the two groups `conflict` (computation only), with the BT
    model's point and hypervolume when its accuracy by group `bt` is given."""
    a, b = conflict
    pairs_a = [p for p in pairs if p["group"] == a]
    pairs_b = [p for p in pairs if p["group"] == b]
    mixing = mixing_front(reward, pairs_a, pairs_b, pools[a], pools[b], ratios, mix_k, mix_draws, seed)
    if bt is not None:
        mixing["bt_point"] = [bt[a], bt[b]]
        mixing["bt_hypervolume"] = hypervolume_2d([(bt[a], bt[b])])
    return mixing


def plot_set(result: Mapping[str, Any], name: str, output_dir: str) -> None:
    """`accuracy_vs_k_<name>.png` and `reliability_<name>.png` (at the largest K) of one set's result."""
    k_max = max(result["calibration"])
    path = os.path.join(output_dir, f"accuracy_vs_k_{name}.png")
    plot_accuracy_vs_k(result["summary"], path, result["bt"], f"Accuracy vs K ({name})")
    calibration = result["calibration"][k_max]
    path = os.path.join(output_dir, f"reliability_{name}.png")
    plot_reliability(calibration["bins"], path, calibration["ece"], f"ICRM, K={k_max} ({name})")


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
    """Run every evaluation on each named evaluation set `(pairs, pools)` ([`steerability_of_set`],
    [`conflict_front`]) and write `steerability.json`, `accuracy_vs_k.csv`, `accuracy_vs_k_<set>.png`,
    `reliability_<set>.png` and, with `conflict=(A, B)` (groups of `conflict_set`), `conflict_front.png`. Returns the
    results written to JSON."""
    os.makedirs(output_dir, exist_ok=True)
    results: dict[str, Any] = {"ks": list(ks), "num_draws": num_draws, "seed": seed, "sets": {}}
    csv_rows = []
    for name, (pairs, pools) in eval_sets.items():
        result, rows = steerability_of_set(reward, pairs, pools, bt_reward, ks, num_draws, ece_bins, seed, progress)
        plot_set(result, name, output_dir)
        results["sets"][name] = result
        csv_rows += [{"set": name, **row} for row in rows]
        write_json(results, os.path.join(output_dir, "steerability.json"))  # each finished set survives a crash
    write_csv(csv_rows, os.path.join(output_dir, "accuracy_vs_k.csv"))
    if conflict is not None:
        conflict_set = conflict_set or next(iter(eval_sets))
        pairs, pools = eval_sets[conflict_set]
        bt = results["sets"][conflict_set]["bt"]  # the same pairs, already scored
        mixing = conflict_front(reward, pairs, pools, conflict, bt, ratios, mix_k, mix_draws, seed)
        bt_point = mixing.get("bt_point")
        plot_front(mixing, os.path.join(output_dir, "conflict_front.png"), conflict, bt_point)
        results["conflict"] = {"groups": list(conflict), "set": conflict_set, **mixing}
    write_json(results, os.path.join(output_dir, "steerability.json"))
    return results


__all__ = [
    "accuracy_intervals",
    "conflict_front",
    "evaluate_steerability",
    "plot_accuracy_vs_k",
    "plot_front",
    "plot_reliability",
    "plot_set",
    "steerability_of_set",
]
