# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Uncertainty penalties and ensemble aggregations, written once for every reward model (pure numpy).

A reward model's [`~trl_icrm.rewards.RewardPosterior`] gives, per completion, a posterior mean and variance on a
declared scale. The penalties turn them into one reward, the ensembles combine several members' rewards:

- `penalty`: `"mean"` (the posterior mean), `"lcb"` (mean - k * sqrt(var), the std penalty) or `"var_penalty"`
  (mean - k * var); `None` keeps the model's point reward;
- `ensemble`: `"mean"`, `"worst_case"` (minimum), `"mean_minus_std"` (mean - k * std across members) or
  `"uncertainty_weighted"` (mean - k * var across members; Coste et al.'s uncertainty-weighted optimization).

Example:

```python
>>> from trl_icrm.rewards.penalties import combine_rewards
>>> combine_rewards([[0.9, 0.7]], [[0.09, 0.01]], penalty="lcb").tolist()  # the confident candidate wins
[0.6000000000000001, 0.6]
```
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


PENALTIES = ("mean", "lcb", "var_penalty")
"""Penalties of a posterior (mean, variance): `mean` is the mean, `lcb` is mean - k * sqrt(var), `var_penalty` is
mean - k * var."""

ENSEMBLE_METHODS = ("mean", "worst_case", "mean_minus_std", "uncertainty_weighted")
"""How scores of several reward functions combine: their mean, their minimum (worst case), mean - k * std or
mean - k * var (uncertainty-weighted; population std and variance)."""


def penalized_reward(
    mean: Sequence[float] | np.ndarray, variance: Sequence[float] | np.ndarray, penalty: str | None, coef: float = 1.0
) -> np.ndarray:
    """Uncertainty-penalized reward: `lcb` = mean - coef * sqrt(var), `var_penalty` = mean - coef * var.

    `penalty=None` or `"mean"` returns the mean. These are the std and variance penalties of Bayesian reward models
    (with a Laplace posterior, or ICRM's Beta posterior); `docs/method.md` gives the formulas.

    Example:

    ```python
    >>> from trl_icrm.rewards import penalized_reward
    >>> penalized_reward([0.8], [0.04], "lcb", 1.0).tolist()
    [0.6000000000000001]
    >>> penalized_reward([0.8], [0.04], "var_penalty", 5.0).tolist()
    [0.6000000000000001]
    ```
    """
    mean = np.asarray(mean, dtype=float)
    if penalty is None or penalty == "mean":
        return mean
    variance = np.asarray(variance, dtype=float)
    if np.any(variance < 0):
        raise ValueError("variances must be >= 0.")
    if penalty == "lcb":
        return mean - coef * np.sqrt(variance)
    if penalty == "var_penalty":
        return mean - coef * variance
    raise ValueError(f"Unknown penalty {penalty!r}; expected None or one of {PENALTIES}.")


def aggregate_ensemble(
    scores: Sequence[Sequence[float]] | np.ndarray, method: str = "mean", coef: float = 1.0
) -> np.ndarray:
    """Combine the scores of an ensemble of reward functions, shape `(num_members, ...)`, over the first axis.

    `mean`: their mean; `worst_case`: their minimum; `mean_minus_std`: mean - coef * std (population std, so one
    member has std 0); `uncertainty_weighted`: mean - coef * var (population variance). NaN scores (members that did not score a completion) are left out; a completion no member
    scored gets NaN.

    Example:

    ```python
    >>> from trl_icrm.rewards import aggregate_ensemble
    >>> aggregate_ensemble([[1.0, 2.0], [3.0, 2.0]], "mean_minus_std", 1.0).tolist()
    [1.0, 2.0]
    ```
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 0 or scores.shape[0] == 0:
        raise ValueError("aggregate_ensemble needs at least one member.")
    present = ~np.isnan(scores)
    count = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, scores, 0.0).sum(axis=0) / count
        if method == "mean":
            result = mean
        elif method == "worst_case":
            result = np.where(present, scores, np.inf).min(axis=0)
        elif method in ("mean_minus_std", "uncertainty_weighted"):
            deviation = np.where(present, scores - mean, 0.0)
            variance = (deviation**2).sum(axis=0) / count
            result = mean - coef * (np.sqrt(variance) if method == "mean_minus_std" else variance)
        else:
            raise ValueError(f"Unknown ensemble method {method!r}; expected one of {ENSEMBLE_METHODS}.")
    return np.where(count > 0, result, np.nan)


def combine_rewards(
    means: Sequence[Sequence[float]] | np.ndarray,
    variances: Sequence[Sequence[float]] | np.ndarray | None = None,
    penalty: str | None = None,
    penalty_coef: float = 1.0,
    ensemble: str = "mean",
    ensemble_coef: float = 1.0,
) -> np.ndarray:
    """Selection score of each candidate from the scores of one or more reward functions.

    Each member's score is penalized by its own uncertainty first ([`penalized_reward`]), then the members are
    aggregated ([`aggregate_ensemble`]). With `ensemble="mean"` this equals penalizing the average reward by the
    average variance (or std): the ensemble-with-posterior ("LA Ens") recipe of docs/method.md.

    Args:
        means: Shape `(num_members, ...)`.
        variances: Same shape; required when `penalty` is set.
        penalty: `None`, `"lcb"` or `"var_penalty"`.
        penalty_coef: k of the penalty.
        ensemble: One of [`ENSEMBLE_METHODS`].
        ensemble_coef: k of `mean_minus_std` and `uncertainty_weighted`.

    Returns:
        Array of shape `means.shape[1:]`; NaN where no member scored the candidate.

    Example:

    ```python
    >>> from trl_icrm.rewards import combine_rewards
    >>> combine_rewards([[0.9, 0.7]], [[0.09, 0.01]], penalty="lcb").tolist()  # the confident candidate wins
    [0.6000000000000001, 0.6]
    ```
    """
    means = np.asarray(means, dtype=float)
    if penalty not in (None, "mean"):
        if variances is None:
            raise ValueError(f"penalty={penalty!r} needs the variances of the scores.")
        variances = np.asarray(variances, dtype=float)
        if variances.shape != means.shape:
            raise ValueError(f"variances must have the shape of means {means.shape}, got {variances.shape}.")
    return aggregate_ensemble(penalized_reward(means, variances, penalty, penalty_coef), ensemble, ensemble_coef)


def check_penalty(penalty: str | None) -> None:
    """Raise a `ValueError` naming the choices unless `penalty` is `None` or one of [`PENALTIES`]."""
    if penalty is not None and penalty not in PENALTIES:
        raise ValueError(f"Unknown penalty {penalty!r}; expected None or one of {PENALTIES}.")


__all__ = [
    "ENSEMBLE_METHODS",
    "PENALTIES",
    "aggregate_ensemble",
    "check_penalty",
    "combine_rewards",
    "penalized_reward",
]
