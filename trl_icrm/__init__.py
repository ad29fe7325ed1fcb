# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""trl-icrm: test-time steerable, Bayesian reward models (Variational In-Context Reward Modeling) for TRL."""

__version__ = "0.1.0"

from .best_of_n import BestOfNOutput, BestOfNSampler, SupportsUncertainty, expected_best_of_n, kl_bon
from .default_model import DEFAULT_MODEL, default_model_path, resolve_model_name_or_path
from .demonstrations import DemonstrationRenderer, DemonstrationTemplate
from .icrm_config import ICRMConfig
from .icrm_trainer import ICRMRewardTrainer
from .modeling import ICRMSettings, load_icrm_model
from .objective import icrm_loss
from .reward import ICRMReward, SequenceClassifierReward, build_reward
from .verifier import MathVerifyReward


__all__ = [
    "DEFAULT_MODEL",
    "BestOfNOutput",
    "BestOfNSampler",
    "DemonstrationRenderer",
    "DemonstrationTemplate",
    "ICRMConfig",
    "ICRMReward",
    "ICRMRewardTrainer",
    "ICRMSettings",
    "MathVerifyReward",
    "SequenceClassifierReward",
    "SupportsUncertainty",
    "build_reward",
    "default_model_path",
    "expected_best_of_n",
    "icrm_loss",
    "kl_bon",
    "load_icrm_model",
    "resolve_model_name_or_path",
]
