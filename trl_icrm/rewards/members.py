# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`MemberScoresReward`]: the base of the reward models whose posterior is M scores of every completion.

A head ensemble (M heads), a LoRA ensemble (M adapters) and MC dropout (T stochastic passes) each give a
`(num_members, n)` array of scores. Per completion, `mean` and `variance` are the mean and (population) variance of
its M scores (`scale="score"`), `reward` their aggregate under `method`
(`trl_icrm.rewards.penalties.aggregate_ensemble`: `"mean"`, `"worst_case"`, `"mean_minus_std"`,
`"uncertainty_weighted"`), and their spread (std) is reported as the extra `member_spread`. A subclass loads its
model in `__init__` and implements `member_scores`.

Example:

```python
>>> import numpy as np
>>> from trl_icrm.rewards.members import MemberScoresReward
>>> class TwoMembers(MemberScoresReward):
...     def member_scores(self, prompts, completions):
...         return np.array([[1.0] * len(completions), [3.0] * len(completions)])
>>> TwoMembers(method="worst_case", name="two")(prompts=["p"], completions=["c"])
[1.0]
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import RewardModel, RewardPosterior
from .penalties import ENSEMBLE_METHODS, aggregate_ensemble


def check_method(method: str) -> None:
    if method not in ENSEMBLE_METHODS:
        raise ValueError(f"Unknown ensemble method {method!r}; expected one of {ENSEMBLE_METHODS}.")


def member_posterior(scores: np.ndarray, method: str, coef: float, scale: str) -> RewardPosterior:
    """The posterior of `(num_members, n)` member scores: their aggregate under `method` as `reward`, their mean and
    population variance, and their spread (std) as an extra."""
    return RewardPosterior(
        reward=aggregate_ensemble(scores, method, coef),
        mean=scores.mean(axis=0),
        variance=scores.var(axis=0),
        scale=scale,
        extras={"member_spread": scores.std(axis=0)},
    )


class MemberScoresReward(RewardModel):
    """
    A reward model scoring every completion M times (members or stochastic passes); see the module's docstring.

    Args:
        method: Aggregate of the M scores giving `reward`.
        coef: k of `"mean_minus_std"` and `"uncertainty_weighted"`.
        name, penalty, penalty_coef: See [`RewardModel`].
    """

    scale = "score"
    has_uncertainty = True
    model: Any = None
    """The torch model a subclass scores with (moved by [`to`])."""

    def __init__(
        self,
        *,
        method: str = "mean",
        coef: float = 1.0,
        name: str = "reward",
        penalty: str | None = None,
        penalty_coef: float = 1.0,
    ):
        super().__init__(penalty=penalty, penalty_coef=penalty_coef, name=name)
        check_method(method)
        self.method, self.coef = method, coef

    def member_scores(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """`(num_members, len(completions))` scores."""
        raise NotImplementedError

    def to(self, device: Any) -> MemberScoresReward:
        """Move the model to `device`; returns `self`."""
        self.model.to(device)
        return self

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        """The aggregate (`reward`), mean and variance of every completion's M scores."""
        return member_posterior(self.member_scores(prompts, completions), self.method, self.coef, self.scale)


__all__ = ["MemberScoresReward", "check_method", "member_posterior"]
