# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Reward models on one reward-posterior interface, their penalties and ensembles, and the registry that loads them.

- `base`: [`RewardPosterior`] and [`RewardModel`] (every model: `score(...) -> RewardPosterior`, callable as a TRL
  reward function);
- `icrm`, `vrm`, `classifier`, `laplace`, `math_verify`: ICRM, VRM, a BT sequence classifier, a BT model with its
  Laplace posterior, math-verify correctness;
- `penalties`, `ensemble`: uncertainty penalties and ensembles, written once for every model;
- `head_ensemble`, `lora_ensemble`, `mc_dropout`: M heads on one frozen backbone, M LoRA adapters on one base
  model, MC dropout on a BT model (ensembles that share compute);
- `members`: the base of the models whose posterior is M scores per completion (the three above);
- `registry`: [`load_reward`] by saved kind or name.

Names are imported lazily (as from `trl_icrm`), so importing the registry or the penalties loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_attributes
from . import penalties, registry  # light (no torch): their whole public surface is the package's


_EXPORTS = {
    "trl_icrm.rewards.base": [
        "RewardModel",
        "RewardPosterior",
        "SupportsUncertainty",
        "columns_only",
        "supports_uncertainty",
    ],
    "trl_icrm.rewards.classifier": ["SequenceClassifierReward"],
    "trl_icrm.rewards.ensemble": ["EnsembleReward"],
    "trl_icrm.rewards.head_ensemble": ["HeadEnsembleReward"],
    "trl_icrm.rewards.icrm": ["ICRMReward"],
    "trl_icrm.rewards.laplace": ["LaplaceReward"],
    "trl_icrm.rewards.lora_ensemble": ["LoRAEnsembleReward"],
    "trl_icrm.rewards.math_verify": ["MathVerifyReward", "completion_text"],
    "trl_icrm.rewards.mc_dropout": ["MCDropoutReward"],
    "trl_icrm.rewards.penalties": penalties.__all__,
    "trl_icrm.rewards.registry": registry.__all__,
    "trl_icrm.rewards.vrm": ["VRMReward"],
}
"""Every public name, by the module it is imported from on first use; `__all__` is derived from it."""

__all__ = sorted(name for names in _EXPORTS.values() for name in names)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # the same names, for type checkers and IDEs
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
    from .registry import (
        NAMED_REWARDS,
        REWARD_KINDS,
        RewardKind,
        build_reward,
        load_reward,
        register_reward_kind,
        reward_model_kind,
    )
    from .vrm import VRMReward
