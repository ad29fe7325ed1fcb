# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Calibration and uncertainty of a Laplace reward model on preference pairs, against its MAP model.

[`pair_predictions`] gives, for each pair, the MAP probability that the chosen side wins, sigmoid(r_c - r_r), the
Laplace one and each side's predictive variance. The Laplace probability is the probit approximation of the
Bradley-Terry link on the margin, sigmoid(m / sqrt(1 + pi/8 v)), with m and v the mean and variance of r_c - r_r under
laplace-torch's GLM predictive of the pair (its 2x2 covariance). laplace-torch's own `link_approx="probit"` treats the
pair as two softmax classes and scales each logit by its own variance, ignoring the covariance: with unequal
variances that can flip which side wins, so the margin is used instead.

[`calibration_summary`] turns them into ECEs and reliability bins (`trl_icrm.evaluation.calibration`, both
orientations of every pair so that the outcome is not always 1) and the mean variance, so that two data sets (the
training distribution and another one) give the off-distribution variance ratio.

Example:

```python
from trl_icrm.laplace import load_posterior
from trl_icrm.laplace.evaluation import calibration_summary, pair_predictions

posterior = load_posterior("outputs/math-bt-lora")
summary = calibration_summary(pair_predictions(posterior, tokenizer, held_out_pairs))
summary["ece_map"], summary["ece_laplace"]
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from ..evaluation.calibration import expected_calibration_error, reliability_bins
from .adapter import encode_pairs, pack_rows, pooled_features
from .posterior import LaplacePosterior
from .predictive import glm_predictive


def pair_predictions(
    posterior: LaplacePosterior,
    tokenizer: Any,
    pairs: Sequence[Mapping[str, Any]],
    batch_size: int = 8,
    max_length: int | None = 1024,
) -> dict[str, torch.Tensor]:
    """Per pair: `reward_chosen`, `reward_rejected` (MAP), `map_prob`, `laplace_prob` (P(chosen wins)) and
    `variance_chosen`, `variance_rejected` (`batch_size` pairs per forward and backward pass)."""
    from ..demonstrations import DemonstrationRenderer

    pairs = [pairs[i] for i in range(len(pairs))]
    encoded = encode_pairs(DemonstrationRenderer(tokenizer), pairs, max_length)
    out: dict[str, list[torch.Tensor]] = {"map_prob": [], "laplace_prob": [], "variance": [], "reward": []}
    for start in range(0, len(encoded), batch_size):
        inputs = pack_rows([side for pair in encoded[start : start + batch_size] for side in pair], per_item=2)
        if posterior.subset == "last_layer":
            inputs = pooled_features(posterior.model, inputs, posterior.pad_token_id)
        # GLM predictive of (r_c, r_r): the mean is the MAP model's output, the (b, 2, 2) covariance J Sigma J^T
        mean, covariance = glm_predictive(posterior.laplace, inputs)
        mean = mean.double()
        out["reward"].append(mean)
        out["map_prob"].append(torch.sigmoid(mean[:, 0] - mean[:, 1]))
        out["laplace_prob"].append(margin_probit(mean, covariance.double()))
        out["variance"].append(torch.diagonal(covariance, dim1=-2, dim2=-1).double().clamp_min(0.0))
    variance, reward = torch.cat(out["variance"]), torch.cat(out["reward"])
    return {
        "reward_chosen": reward[:, 0],
        "reward_rejected": reward[:, 1],
        "map_prob": torch.cat(out["map_prob"]),
        "laplace_prob": torch.cat(out["laplace_prob"]),
        "variance_chosen": variance[:, 0],
        "variance_rejected": variance[:, 1],
    }


STD_TO_SPREAD_WARNING = 3.0
"""A predictive std this many times the spread of the rewards ranks by uncertainty alone under an `lcb` penalty."""


def std_to_spread(predictions: Mapping[str, torch.Tensor]) -> float:
    """The median predictive std of the rewards of [`pair_predictions`] over the standard deviation of the MAP
    rewards themselves: above a few, `mean - k std` ranks completions by their uncertainty, not by their reward."""
    rewards = torch.cat([predictions["reward_chosen"], predictions["reward_rejected"]])
    std = torch.cat([predictions["variance_chosen"], predictions["variance_rejected"]]).sqrt()
    return float(std.median() / rewards.std().clamp_min(1e-12))


def margin_probit(mean: torch.Tensor, covariance: torch.Tensor) -> torch.Tensor:
    """P(first side wins) under a Gaussian `(mean (b, 2), covariance (b, 2, 2))` of the two rewards, by the probit
    approximation E[sigmoid(m)] ~ sigmoid(mu / sqrt(1 + pi/8 var)) of the margin m = r_0 - r_1."""
    margin = mean[:, 0] - mean[:, 1]
    variance = (covariance[:, 0, 0] + covariance[:, 1, 1] - 2 * covariance[:, 0, 1]).clamp_min(0.0)
    return torch.sigmoid(margin / torch.sqrt(1.0 + torch.pi / 8 * variance))


def calibration_summary(predictions: Mapping[str, torch.Tensor], num_bins: int = 10) -> dict[str, Any]:
    """Accuracy, ECE and reliability bins of the MAP and Laplace probabilities, and the mean predictive variance."""
    summary: dict[str, Any] = {"num_pairs": len(predictions["map_prob"])}
    for key, name in (("map_prob", "map"), ("laplace_prob", "laplace")):
        prob = predictions[key]
        both = torch.cat([prob, 1 - prob])  # each pair in both orientations: outcome 1 for chosen-first, 0 otherwise
        outcomes = torch.cat([torch.ones_like(prob), torch.zeros_like(prob)])
        summary[f"accuracy_{name}"] = (prob > 0.5).double().mean().item()
        summary[f"ece_{name}"] = expected_calibration_error(both, outcomes, num_bins)
        summary[f"reliability_{name}"] = reliability_bins(both, outcomes, num_bins)
        summary[f"nll_{name}"] = -torch.log(prob.clamp_min(1e-12)).mean().item()
    variance = torch.cat([predictions["variance_chosen"], predictions["variance_rejected"]])
    summary["mean_variance"] = variance.mean().item()
    summary["median_variance"] = variance.median().item()
    return summary


__all__ = ["STD_TO_SPREAD_WARNING", "calibration_summary", "margin_probit", "pair_predictions", "std_to_spread"]
