# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Evaluation metrics of reward models: calibration of preference probabilities.

Example:

```python
>>> import torch
>>> from trl_icrm.evaluation.calibration import expected_calibration_error
>>> expected_calibration_error(torch.tensor([0.9, 0.9, 0.2]), torch.tensor([1, 0, 0]))  # doctest: +ELLIPSIS
0.33...

```
"""

from __future__ import annotations

import torch


def reliability_bins(
    probabilities: torch.Tensor, outcomes: torch.Tensor, num_bins: int = 10
) -> list[dict[str, float]]:
    """The non-empty equal-width bins of a reliability diagram: for each, its bounds, the number of predictions, their
    mean probability (`confidence`) and the observed frequency of the outcome (`frequency`); the last bin includes
    1.0."""
    probabilities = probabilities.detach().double().flatten()
    outcomes = outcomes.detach().double().flatten()
    bins = (probabilities * num_bins).long().clamp(0, num_bins - 1)
    rows = []
    for b in bins.unique().tolist():
        mask = bins == b
        rows.append(
            {
                "lower": b / num_bins,
                "upper": (b + 1) / num_bins,
                "count": int(mask.sum()),
                "confidence": probabilities[mask].mean().item(),
                "frequency": outcomes[mask].mean().item(),
            }
        )
    return rows


def expected_calibration_error(probabilities: torch.Tensor, outcomes: torch.Tensor, num_bins: int = 10) -> float:
    """Expected calibration error of predicted probabilities against 0/1 outcomes with equal-width bins.

    ECE = sum_b (n_b / n) * | mean(outcome in b) - mean(probability in b) |; the last bin includes 1.0.
    """
    rows = reliability_bins(probabilities, outcomes, num_bins)
    total = sum(row["count"] for row in rows)
    if total == 0:
        return float("nan")
    return sum(row["count"] / total * abs(row["frequency"] - row["confidence"]) for row in rows)
