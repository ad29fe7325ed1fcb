# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The report of the math GRPO experiment (`trl-icrm compare-rewards`): a markdown table and a plot of the held-out
accuracy of GRPO runs, one per reward, from the results that `trl-icrm grpo` writes.

Example:

```python
>>> from trl_icrm.experiments.math_grpo_report import comparison_table
>>> history = [{"step": 0, "accuracy": 0.25}, {"step": 10, "accuracy": 0.5}]
>>> print(comparison_table({"verifier": {"heldout_accuracy": {"before": 0.25, "after": 0.5, "history": history}}}))
| reward | steps | held-out accuracy before | after | best during training |
| --- | --- | --- | --- | --- |
| verifier | 10 | 0.250 | 0.500 | 0.500 |
<BLANKLINE>

```
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from ..utils.io import new_figure, save_figure, write_json


def _fmt(value: Any) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.3f}"


def comparison_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of held-out accuracy before and after training (and the best), one row per reward.

    Args:
        results: `{reward name: results}`, each as written by `recipes/grpo_math.py` (with `heldout_accuracy`:
            `{"before", "after", "history": [{"step", "accuracy", ...}]}`).
    """
    lines = [
        "| reward | steps | held-out accuracy before | after | best during training |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, result in results.items():
        heldout = result["heldout_accuracy"]
        history = heldout.get("history") or []
        accuracies = [h["accuracy"] for h in history if not math.isnan(h["accuracy"])]
        steps = history[-1]["step"] if history else "n/a"
        best = max(accuracies) if accuracies else None
        lines.append(
            f"| {name} | {steps} | {_fmt(heldout.get('before'))} | {_fmt(heldout.get('after'))} | {_fmt(best)} |"
        )
    return "\n".join(lines) + "\n"


def plot_accuracy_curves(results: Mapping[str, Mapping[str, Any]], path: str | os.PathLike, title: str | None = None):
    """A PNG of held-out accuracy vs training step, one line per reward (matplotlib, Agg backend)."""
    figure, axis = new_figure((6, 4))
    for name, result in results.items():
        history = result["heldout_accuracy"].get("history") or []
        axis.plot([h["step"] for h in history], [h["accuracy"] for h in history], marker="o", label=name)
    axis.set_xlabel("GRPO step")
    axis.set_ylabel("held-out accuracy (greedy, math-verify)")
    axis.set_ylim(bottom=0)
    axis.set_title(title or "Held-out accuracy by reward")
    axis.grid(alpha=0.3)
    axis.legend()
    return save_figure(figure, path)


def write_comparison(results: Mapping[str, Mapping[str, Any]], output_dir: str | os.PathLike) -> dict[str, str]:
    """Write `comparison.md` ([`comparison_table`]), `comparison.png` ([`plot_accuracy_curves`]) and
    `comparison.json` (the results without TRL's logs) to `output_dir`; return their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "markdown": os.path.join(output_dir, "comparison.md"),
        "plot": plot_accuracy_curves(results, os.path.join(output_dir, "comparison.png")),
        "json": write_json(
            {name: {k: v for k, v in result.items() if k != "log_history"} for name, result in results.items()},
            os.path.join(output_dir, "comparison.json"),
        ),
    }
    with open(paths["markdown"], "w", encoding="utf-8") as handle:
        handle.write(
            "# Held-out accuracy of GRPO with each reward (greedy, math-verify)\n\n" + comparison_table(results)
        )
    return paths


__all__ = ["comparison_table", "plot_accuracy_curves", "write_comparison"]
