# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Reward models on one reward-posterior interface, their penalties and ensembles, and the registry that loads them.

- `base`: [`RewardPosterior`] and [`RewardModel`] (every model: `score(...) -> RewardPosterior`, callable as a TRL
  reward function);
- `icrm`, `vrm`, `classifier`, `laplace`, `math_verify`: ICRM, VRM, a BT sequence classifier, a BT model with its
  Laplace posterior, math-verify correctness;
- `penalties`, `ensemble`: uncertainty penalties and ensembles, written once for every model;
- `head_ensemble`, `lora_ensemble`, `mc_dropout`: M heads on one frozen backbone, M LoRA adapters on one base
  model, MC dropout on a BT model (ensembles that share compute);
- `registry`: [`load_reward`] by saved kind or name.
"""

from .base import RewardModel, RewardPosterior, SupportsUncertainty, columns_only, supports_uncertainty
from .classifier import SequenceClassifierReward
from .ensemble import EnsembleReward
from .head_ensemble import HeadEnsembleReward
from .icrm import ICRMReward
from .laplace import LaplaceReward
from .lora_ensemble import LoRAEnsembleReward
from .math_verify import MathVerifyReward, completion_text
from .mc_dropout import MCDropoutReward
from .penalties import (
    ENSEMBLE_METHODS,
    PENALTIES,
    aggregate_ensemble,
    check_penalty,
    combine_rewards,
    penalized_reward,
)
from .registry import REWARD_KINDS, RewardKind, build_reward, load_reward, register_reward_kind, reward_model_kind
from .vrm import VRMReward


__all__ = [
    "ENSEMBLE_METHODS",
    "PENALTIES",
    "REWARD_KINDS",
    "EnsembleReward",
    "HeadEnsembleReward",
    "ICRMReward",
    "LaplaceReward",
    "LoRAEnsembleReward",
    "MCDropoutReward",
    "MathVerifyReward",
    "RewardKind",
    "RewardModel",
    "RewardPosterior",
    "SequenceClassifierReward",
    "SupportsUncertainty",
    "VRMReward",
    "aggregate_ensemble",
    "build_reward",
    "check_penalty",
    "columns_only",
    "combine_rewards",
    "completion_text",
    "load_reward",
    "penalized_reward",
    "register_reward_kind",
    "reward_model_kind",
    "supports_uncertainty",
]
