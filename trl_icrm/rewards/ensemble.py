# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`EnsembleReward`]: several reward models as one, on the reward-posterior interface.

The members score the same completions; the ensemble's point reward aggregates the members' rewards (`mean`,
`worst_case`, `mean_minus_std`, `uncertainty_weighted`: `trl_icrm.rewards.penalties.aggregate_ensemble`), and its
posterior is the mixture of the members' posteriors: mean = the mean of the members' means, variance = the mean of
their variances plus the variance of their means (law of total variance; a member without variance counts as 0).
With Laplace or ICRM members and `penalty="lcb"` this is the "ensemble + posterior" penalty.

Example:

```python
>>> import numpy as np
>>> from trl_icrm.rewards import EnsembleReward, RewardModel, RewardPosterior
>>> class Constant(RewardModel):
...     def __init__(self, value):
...         super().__init__(name=f"c{value}")
...         self.value = value
...     def score(self, prompts, completions, **columns):
...         values = np.full(len(completions), self.value)
...         return RewardPosterior(values, values, None, "score")
>>> ensemble = EnsembleReward([Constant(1.0), Constant(3.0)], penalty="lcb")
>>> ensemble(prompts=["p"], completions=["c"])  # mean 2, std across members 1
[1.0]
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import RewardModel, RewardPosterior
from .penalties import ENSEMBLE_METHODS, aggregate_ensemble


class EnsembleReward(RewardModel):
    """Several [`RewardModel`]s scored together as one reward model.

    Args:
        members: The reward models (at least one), all on the same `scale`.
        method: How the point rewards combine: `"mean"`, `"worst_case"`, `"mean_minus_std"` or
            `"uncertainty_weighted"` (mean - k var across members).
        coef: k of `"mean_minus_std"` and `"uncertainty_weighted"`.
        penalty, penalty_coef: The penalty of the ensemble's posterior (see [`RewardModel`]).
        name: The name TRL logs the reward under.
    """

    has_uncertainty = True

    def __init__(
        self,
        members: Sequence[RewardModel],
        method: str = "mean",
        coef: float = 1.0,
        *,
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        name: str = "ensemble",
    ):
        members = list(members)
        if not members or not all(isinstance(member, RewardModel) for member in members):
            raise ValueError("EnsembleReward needs one or more trl-icrm reward models (RewardModel instances).")
        scales = sorted({member.scale for member in members})
        if len(scales) != 1:
            raise ValueError(f"Ensemble members must share one scale to be averaged, got {scales}.")
        if method not in ENSEMBLE_METHODS:
            raise ValueError(f"Unknown ensemble method {method!r}; expected one of {ENSEMBLE_METHODS}.")
        super().__init__(penalty=penalty, penalty_coef=penalty_coef, name=name)
        self.members, self.method, self.coef = members, method, coef
        self.scale = scales[0]

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        posteriors = [member.score(prompts, completions, **columns) for member in self.members]
        rewards = np.stack([posterior.reward for posterior in posteriors])
        means = np.stack([posterior.mean for posterior in posteriors])
        variances = np.stack([np.zeros_like(p.mean) if p.variance is None else p.variance for p in posteriors])
        return RewardPosterior(
            reward=aggregate_ensemble(rewards, self.method, self.coef),
            mean=means.mean(axis=0),
            variance=variances.mean(axis=0) + means.var(axis=0),
            scale=self.scale,
            extras={"member_spread": means.std(axis=0)},
        )


__all__ = ["EnsembleReward"]
