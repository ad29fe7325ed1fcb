# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The reward-posterior interface that every trl-icrm reward model implements.

A reward model scores a batch of (context, prompt, completion) and returns a [`RewardPosterior`]: per completion, a
point reward (`reward`) and the mean and variance of its posterior on a declared scale. From it, one penalty
(`penalty`, `penalty_coef`; see `trl_icrm.rewards.penalties`) gives the penalized reward, the one a trainer receives
(the point reward when `penalty` is `None`). `reward` means the point reward everywhere, the reward server's `/score`
included, and `penalized_reward` the penalized one (docs/method.md, "Words"). Every consumer reads
this one interface: the TRL reward callable (`RewardModel.__call__`, for `GRPOTrainer` / `RLOOTrainer`),
`BestOfNSampler`, the ensembles and the experiments.

| model                      | `reward`            | `mean`, `variance` (`scale`)                                    |
| -------------------------- | ------------------- | --------------------------------------------------------------- |
| ICRM                       | r (the logit)       | Beta mean sigmoid(r) and variance mu(1-mu)/(kappa+1) (`probability`) |
| BT sequence classifier     | the score           | the score, no variance (`score`)                                |
| BT + Laplace posterior     | r_MAP               | r_MAP and the GLM predictive variance Lambda (`score`)          |
| ensemble                   | aggregate of rewards| mean of means, total variance across members (members' scale)   |

Example:

```python
>>> import numpy as np
>>> from trl_icrm.rewards import RewardPosterior
>>> posterior = RewardPosterior(reward=np.array([2.0]), mean=np.array([0.8]), variance=np.array([0.04]),
...                             scale="probability")
>>> posterior.penalized(None).tolist(), posterior.penalized("lcb", 1.0).round(3).tolist()
([2.0], [0.6])
```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .penalties import check_penalty, penalized_reward


TRL_CALL_KEYS = ("trainer_state", "log_extra", "log_metric", "completion_ids")
"""Keyword arguments TRL passes to a reward function that are not dataset columns."""


def columns_only(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset columns among the keyword arguments of a TRL reward-function call."""
    return {key: value for key, value in kwargs.items() if key not in TRL_CALL_KEYS}


@dataclass
class RewardPosterior:
    """Per-completion rewards with their uncertainty.

    Attributes:
        reward: The point reward of each completion (what a trainer receives with `penalty=None`).
        mean: Posterior mean of each completion's reward on `scale`.
        variance: Posterior variance on `scale`, or `None` for a model without uncertainty.
        scale: What `mean` and `variance` measure, e.g. `"probability"` (ICRM: P(completion preferred over a
            neutral one)) or `"score"` (a BT model's score).
        extras: Other per-completion values a model reports (e.g. ICRM's confidence and demonstrations used).
    """

    reward: np.ndarray
    mean: np.ndarray
    variance: np.ndarray | None
    scale: str
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.reward = np.asarray(self.reward, dtype=float).reshape(-1)
        self.mean = np.asarray(self.mean, dtype=float).reshape(-1)
        if self.variance is not None:
            self.variance = np.asarray(self.variance, dtype=float).reshape(-1)
        sizes = {len(self.reward), len(self.mean)} | ({len(self.variance)} if self.variance is not None else set())
        if len(sizes) != 1:
            raise ValueError(f"reward, mean and variance must have one value per completion, got sizes {sizes}.")
        if self.variance is not None and np.any(self.variance < 0):
            raise ValueError("variances must be >= 0.")

    def __len__(self) -> int:
        return len(self.reward)

    def penalized(self, penalty: str | None, coef: float = 1.0) -> np.ndarray:
        """The penalized reward under `penalty`: the point reward (`None`), the mean (`"mean"`), or mean - coef * std
        (`"lcb"`) or mean - coef * var (`"var_penalty"`)."""
        check_penalty(penalty)
        if penalty is None:
            return self.reward
        if penalty != "mean" and self.variance is None:
            raise ValueError(f"penalty={penalty!r} needs a variance, and this reward model reports none.")
        return penalized_reward(self.mean, self.variance, penalty, coef)


@runtime_checkable
class SupportsUncertainty(Protocol):
    """Optional protocol of a plain reward function (not a [`RewardModel`]) that also returns its variances.

    `score_with_uncertainty` takes the arguments of a TRL reward function and returns two lists of the same length as
    `completions`: the mean score and its variance (`None` or NaN where the completion is not scored). Every
    [`RewardModel`] with a variance implements it.

    Example:

    ```python
    >>> from trl_icrm.rewards import SupportsUncertainty
    >>> class Fake:
    ...     __name__ = "fake"
    ...     def __call__(self, prompts, completions, **kwargs):
    ...         return self.score_with_uncertainty(prompts, completions, **kwargs)[0]
    ...     def score_with_uncertainty(self, prompts, completions, **kwargs):
    ...         return [float(len(c)) for c in completions], [1.0] * len(completions)
    >>> isinstance(Fake(), SupportsUncertainty)
    True
    ```
    """

    def score_with_uncertainty(
        self, prompts: list, completions: list, **kwargs: Any
    ) -> tuple[Sequence[float | None], Sequence[float | None]]: ...


def check_batch(
    prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any], name: str = "reward"
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """`(prompts, completions, columns)` as lists, after checking that the batch is not empty and that every
    argument has one value per completion; a `ValueError` names the reward and the argument otherwise."""
    if prompts is None or completions is None or isinstance(prompts, str) or isinstance(completions, str):
        raise ValueError(f"{name}: prompts and completions must be lists (one prompt per completion).")
    prompts, completions = list(prompts), list(completions)
    if not completions:
        raise ValueError(f"{name}: the batch is empty (no completions to score).")
    if len(prompts) != len(completions):
        raise ValueError(f"{name}: got {len(prompts)} prompts for {len(completions)} completions.")
    for key, values in columns.items():
        if not hasattr(values, "__len__") or isinstance(values, (str, Mapping)) or len(values) != len(completions):
            raise ValueError(f"{name}: column {key!r} must hold one value per completion ({len(completions)}).")
    return prompts, completions, dict(columns)


class RewardModel:
    """Base class of trl-icrm's reward models: [`score`] gives a [`RewardPosterior`]; calling the model is TRL's reward
    function (one float per completion: the penalized reward, `posterior.penalized(penalty, penalty_coef)`).

    Subclasses implement `score(prompts, completions, **columns)` and set `scale` and `has_uncertainty`.

    Args:
        penalty: `None` (the point reward), `"mean"`, `"lcb"` or `"var_penalty"` (see
            `trl_icrm.rewards.penalties`).
        penalty_coef: k of the penalty.
        name: The name TRL logs the reward under (`rewards/<name>/mean`).
    """

    scale: str = "score"
    has_uncertainty: bool = False

    def __init__(self, *, penalty: str | None = None, penalty_coef: float = 1.0, name: str = "reward"):
        check_penalty(penalty)
        if penalty not in (None, "mean") and not self.has_uncertainty:
            raise ValueError(
                f"penalty={penalty!r} needs a reward model with a variance; {type(self).__name__} has none."
            )
        self.penalty = penalty
        self.penalty_coef = penalty_coef
        self.__name__ = name

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns: Any) -> RewardPosterior:
        """The posterior of every completion's reward (dataset columns hold one value per completion)."""
        raise NotImplementedError

    def __call__(self, prompts, completions, completion_ids=None, **kwargs) -> list[float]:
        prompts, completions, columns = check_batch(prompts, completions, columns_only(kwargs), self.__name__)
        posterior = self.score(prompts, completions, **columns)
        log_metric = kwargs.get("log_metric")
        if log_metric is not None:
            for key, values in posterior.extras.items():
                if len(values):
                    log_metric(f"{self.__name__}/{key}", float(np.mean(values)))
        return [float(value) for value in posterior.penalized(self.penalty, self.penalty_coef)]

    def score_with_uncertainty(self, prompts, completions, **kwargs) -> tuple[list[float], list[float]]:
        """Posterior means and variances ([`SupportsUncertainty`])."""
        prompts, completions, columns = check_batch(prompts, completions, columns_only(kwargs), self.__name__)
        posterior = self.score(prompts, completions, **columns)
        if posterior.variance is None:
            raise ValueError(f"{self.__name__} reports no variance.")
        return posterior.mean.tolist(), posterior.variance.tolist()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.__name__!r}, penalty={self.penalty!r})"


def supports_uncertainty(reward_func: Any) -> bool:
    """Whether `reward_func` reports variances: a [`RewardModel`] with them, or a function with
    `score_with_uncertainty` ([`SupportsUncertainty`])."""
    if isinstance(reward_func, RewardModel):
        return reward_func.has_uncertainty
    return isinstance(reward_func, SupportsUncertainty)


__all__ = [
    "TRL_CALL_KEYS",
    "RewardModel",
    "RewardPosterior",
    "SupportsUncertainty",
    "check_batch",
    "columns_only",
    "supports_uncertainty",
]
