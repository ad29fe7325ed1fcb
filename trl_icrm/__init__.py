# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""trl-icrm: test-time steerable, Bayesian reward models for TRL.

The library, by concept (each a subpackage or module; names below import from `trl_icrm` directly):

- `icrm` (`objective`, `modeling`): the ICRM method (variational Beta-Bradley-Terry loss; the two-headed model);
- `models`: the model toolkit every method uses (loading a backbone with a head; the prefix cache, packed forward);
- `vrm` (`objective`, `modeling`): the VRM method (latent objective weights and semantic features; its head);
- `demonstrations`: rendering demonstrations into a model input, and the one demonstration sampler;
- `trainer`: `ICRMConfig`, `ICRMRewardTrainer`, `VRMConfig`, `VRMRewardTrainer` (on `trl.RewardTrainer`),
  `bt_config_from`;
- `rewards`: the reward-posterior interface, ICRM / VRM / BT / Laplace / math-verify rewards, penalties, ensembles,
  `load_reward`;
- `uncertainty`: ensembles that share compute (M heads on one frozen backbone, M LoRA adapters on one base model) and
  MC dropout, trained on precomputed features where the backbone is frozen;
- `laplace`: Bayesian reward models by Laplace-LoRA (a laplace-torch posterior fitted to a trained BT model);
- `best_of_n`: `BestOfNSampler` and the exact over-optimization estimators;
- `evaluation`: calibration and steerability metrics;
- `data`: loaders, built-in and benchmark preference sets, math problems, the steerable set;
- `utils`: the embedded default model, distributed helpers, generation, I/O and plots.

`experiments` (best-of-N over-optimization, steerability benchmark, math GRPO recipe) and `scripts` (one module per
`trl-icrm` command) build on the library and are never imported by it. Names are imported lazily, so `import
trl_icrm` (and `trl-icrm --help`) does not load torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .utils.lazy import lazy_attributes


__version__ = "0.4.0"

_EXPORTS = {
    "trl_icrm.best_of_n": ["BestOfNOutput", "BestOfNSampler", "expected_best_of_n", "kl_bon"],
    "trl_icrm.demonstrations": ["DemonstrationBank", "DemonstrationRenderer", "DemonstrationTemplate"],
    "trl_icrm.laplace": ["LaplacePosterior", "fit_laplace", "load_posterior"],
    "trl_icrm.icrm.modeling": ["ICRMSettings", "load_icrm_model"],
    "trl_icrm.icrm.objective": ["icrm_loss"],
    "trl_icrm.rewards": [
        "EnsembleReward",
        "HeadEnsembleReward",
        "ICRMReward",
        "LaplaceReward",
        "LoRAEnsembleReward",
        "MCDropoutReward",
        "MathVerifyReward",
        "RewardModel",
        "RewardPosterior",
        "SequenceClassifierReward",
        "SupportsUncertainty",
        "VRMReward",
        "build_reward",
        "load_reward",
        "register_reward_kind",
        "reward_model_kind",
    ],
    "trl_icrm.trainer": [
        "ICRMConfig",
        "ICRMRewardTrainer",
        "VRMConfig",
        "VRMRewardTrainer",
        "bt_config_from",
        "save_reward_model",
    ],
    "trl_icrm.vrm.modeling": ["VRMSettings", "load_vrm_model"],
    "trl_icrm.vrm.objective": ["vrm_loss"],
    "trl_icrm.utils.default_model": ["DEFAULT_MODEL", "default_model_path", "resolve_model_name_or_path"],
}
"""Every public name, by the module it is imported from on first use; `__all__` is derived from it."""

__all__ = sorted(name for names in _EXPORTS.values() for name in names)


__getattr__, __dir__ = lazy_attributes(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # the same names, for type checkers and IDEs (tests/test_public_api.py checks they match)
    from .best_of_n import BestOfNOutput, BestOfNSampler, expected_best_of_n, kl_bon
    from .demonstrations import DemonstrationBank, DemonstrationRenderer, DemonstrationTemplate
    from .icrm.modeling import ICRMSettings, load_icrm_model
    from .icrm.objective import icrm_loss
    from .laplace import LaplacePosterior, fit_laplace, load_posterior
    from .rewards import (
        EnsembleReward,
        HeadEnsembleReward,
        ICRMReward,
        LaplaceReward,
        LoRAEnsembleReward,
        MathVerifyReward,
        MCDropoutReward,
        RewardModel,
        RewardPosterior,
        SequenceClassifierReward,
        SupportsUncertainty,
        VRMReward,
        build_reward,
        load_reward,
        register_reward_kind,
        reward_model_kind,
    )
    from .trainer import (
        ICRMConfig,
        ICRMRewardTrainer,
        VRMConfig,
        VRMRewardTrainer,
        bt_config_from,
        save_reward_model,
    )
    from .utils.default_model import DEFAULT_MODEL, default_model_path, resolve_model_name_or_path
    from .vrm.modeling import VRMSettings, load_vrm_model
    from .vrm.objective import vrm_loss
