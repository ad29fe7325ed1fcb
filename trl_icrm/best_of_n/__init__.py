# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Best-of-N: the sampler (`sampler`) and the exact math of over-optimization curves (`estimators`)."""

from ..rewards.base import SupportsUncertainty
from ..rewards.penalties import ENSEMBLE_METHODS, PENALTIES, aggregate_ensemble, combine_rewards, penalized_reward
from .estimators import BestOfNCurve, best_of_n_curve, best_of_n_weights, bootstrap_ci, expected_best_of_n, kl_bon
from .sampler import (
    BestOfNOutput,
    BestOfNSampler,
    RewardFunc,
    reward_func_name,
    score_candidates,
    score_completions,
    score_completions_with_uncertainty,
)


__all__ = [
    "ENSEMBLE_METHODS",
    "PENALTIES",
    "BestOfNCurve",
    "BestOfNOutput",
    "BestOfNSampler",
    "RewardFunc",
    "SupportsUncertainty",
    "aggregate_ensemble",
    "best_of_n_curve",
    "best_of_n_weights",
    "bootstrap_ci",
    "combine_rewards",
    "expected_best_of_n",
    "kl_bon",
    "penalized_reward",
    "reward_func_name",
    "score_candidates",
    "score_completions",
    "score_completions_with_uncertainty",
]
