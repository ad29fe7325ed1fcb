# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Uncertainty that shares compute: ensembles and MC dropout on one backbone.

- `heads`: [`HeadEnsemble`], M reward heads (linear or small MLP) on one frozen backbone's features;
- `training`: [`train_head_ensemble`], the members trained jointly on precomputed features with the BT loss
  (independent initialisations, optionally bootstrapped pairs);
- `fit`: a head ensemble end to end (encode the pairs, train, save; load);
- `lora_ensemble`: M PEFT adapters on one base model; the blocks below the adapted ones run once for all members;
- `mc_dropout`: T stochastic passes with a fixed seed schedule, on the score head or the LoRA path.

The features come from `trl_icrm.models.features` (encoded once, cached); the reward models on the common interface
are `trl_icrm.rewards.HeadEnsembleReward` (kind `"head_ensemble"`), `trl_icrm.rewards.LoRAEnsembleReward` (kind
`"lora_ensemble"`) and `trl_icrm.rewards.MCDropoutReward` (kind `"mc_dropout"`).
"""

from .heads import (
    HEAD_ENSEMBLE_CONFIG,
    HEAD_ENSEMBLE_WEIGHTS,
    HeadEnsemble,
    HeadEnsembleConfig,
    is_head_ensemble_folder,
)
from .mc_dropout import head_dropout_masks, lora_dropout_active, mc_dropout_head_scores
from .training import HeadTrainingArguments, bootstrap_weights, pairwise_metrics, train_head_ensemble


__all__ = [
    "HEAD_ENSEMBLE_CONFIG",
    "HEAD_ENSEMBLE_WEIGHTS",
    "HeadEnsemble",
    "HeadEnsembleConfig",
    "HeadTrainingArguments",
    "bootstrap_weights",
    "head_dropout_masks",
    "is_head_ensemble_folder",
    "lora_dropout_active",
    "mc_dropout_head_scores",
    "pairwise_metrics",
    "train_head_ensemble",
]
