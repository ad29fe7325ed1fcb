# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Bayesian reward models by Laplace-LoRA: a Laplace posterior over a trained Bradley-Terry reward model's LoRA
weights (or its score head), fitted post hoc with laplace-torch (`pip install trl-icrm[laplace]`).

- `adapter`: the thin modules between a sequence classifier and laplace-torch's reward-modeling likelihood;
- `fit`: [`fit_laplace`], [`load_posterior`], [`load_bt_model`];
- `posterior`: [`LaplacePosterior`] (GLM predictive per completion; safetensors storage next to the model).
- `jacobians`: the Jacobians of a batch of completions in one backward pass (a laplace-torch backend);
- `predictive`: the GLM predictive's mean and covariance (the Kronecker square form in the eigenbases);

The reward model on the common interface is `trl_icrm.rewards.laplace.LaplaceReward` (kind `"laplace"` of
`load_reward`).
"""

from .adapter import SUBSETS, NotARewardModelError
from .fit import describe, fit_laplace, load_bt_model, load_posterior
from .posterior import LaplacePosterior, PosteriorMismatchError, posterior_file, saved_subsets


__all__ = [
    "SUBSETS",
    "LaplacePosterior",
    "NotARewardModelError",
    "PosteriorMismatchError",
    "describe",
    "fit_laplace",
    "load_bt_model",
    "load_posterior",
    "posterior_file",
    "saved_subsets",
]
