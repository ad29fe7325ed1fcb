# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Evaluation metrics of reward models: calibration of preference probabilities.

Example:

```python
>>> import torch
>>> from trl_icrm.metrics import expected_calibration_error
>>> expected_calibration_error(torch.tensor([0.9, 0.9, 0.2]), torch.tensor([1, 0, 0]))  # doctest: +ELLIPSIS
0.33...
```
"""

from __future__ import annotations

import torch


def expected_calibration_error(probabilities: torch.Tensor, outcomes: torch.Tensor, num_bins: int = 10) -> float:
    """Expected calibration error of predicted probabilities against 0/1 outcomes with equal-width bins.

    ECE = sum_b (n_b / n) * | mean(outcome in b) - mean(probability in b) |; the last bin includes 1.0.
    """
    probabilities = probabilities.detach().double().flatten()
    outcomes = outcomes.detach().double().flatten()
    if probabilities.numel() == 0:
        return float("nan")
    bins = (probabilities * num_bins).long().clamp(0, num_bins - 1)
    ece = probabilities.new_zeros(())
    for b in bins.unique():
        mask = bins == b
        ece += mask.double().mean() * (outcomes[mask].mean() - probabilities[mask].mean()).abs()
    return ece.item()
