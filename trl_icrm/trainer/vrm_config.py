# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Configuration of [`VRMRewardTrainer`]."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, make_dataclass

from trl import RewardConfig

from ..vrm.modeling import VRMSettings
from ..vrm.objective import SUPERVISION_LOSSES
from .icrm_config import bf16_available, fresh_optimizer_field


logger = logging.getLogger(__name__)


@dataclass
class VRMConfig(RewardConfig):
    r"""
    Configuration class for the [`VRMRewardTrainer`] (variational reward modeling).

    Includes only the parameters specific to VRM; see [`~trl.RewardConfig`] and [`~transformers.TrainingArguments`]
    for the rest. As for [`ICRMConfig`], `bf16` defaults to `True` only where a CUDA device supports it.

    Example:

    ```python
    >>> from trl_icrm import VRMConfig
    >>> args = VRMConfig(output_dir="vrm-model", num_objectives=16, num_features=4, supervision_loss="hinge")
    >>> args.vrm_settings().num_objectives
    16

    ```

    Parameters:
        > Parameters of the model

        num_objectives (`int`, *optional*, defaults to `32`):
            D, the number of objectives: the dimension of the weights w (on the simplex) and of the scores s.
        num_features (`int`, *optional*, defaults to `4`):
            d, the number of semantic features z.
        concentration_eps (`float`, *optional*, defaults to `1e-3`):
            Floor of the Dirichlet concentration softplus(A h_x) + eps and of the feature standard deviations.

        > Parameters of the variational objective

        prior_concentration (`float`, *optional*, defaults to `1.0`):
            alpha_0 of the prior p(w) = Dirichlet(alpha_0 1).
        feature_prior_std (`float`, *optional*, defaults to `1.0`):
            Standard deviation of the prior p(z) = Normal(0, s_0^2 I).
        beta_w (`float`, *optional*, defaults to `0.1`):
            Weight of KL(q(w | x) || p(w)).
        beta_z (`float`, *optional*, defaults to `0.1`):
            Weight of KL(q(z | x, y) || p(z)), summed over both responses of a pair.
        supervision_weight (`float`, *optional*, defaults to `1.0`):
            lambda, the weight of the supervision loss on the mean path r_bar = E[w]^T (G mu + b).
        supervision_loss (`str`, *optional*, defaults to `"bt"`):
            `"bt"` (Bradley-Terry log-loss), `"hinge"` or `"none"`.
        hinge_margin (`float`, *optional*, defaults to `1.0`):
            Margin of the hinge supervision.
        train_samples (`int`, *optional*, defaults to `1`):
            M, latent samples (w, z_a, z_b) per pair in the training objective.
        scoring_samples (`int`, *optional*, defaults to `0`):
            Latent samples for a completion's reward mean and variance when scoring; `0` uses the exact moments.

        > Parameters of the data

        group_column (`str`, *optional*, defaults to `"group"`):
            Optional column naming each pair's prompt family; evaluation then reports the mean objective weights
            E[w] per family. VRM itself does not need it.
        overlong_query (`str`, *optional*, defaults to `"error"`):
            Pairs longer than `max_length`: `"error"` raises naming the first, `"skip"` drops them.
        resume_with_fresh_optimizer (`bool`, *optional*, defaults to `False`):
            Resuming from a checkpoint that lacks `optimizer.pt` or `scheduler.pt` is an error (the run would go on
            with a fresh optimizer or schedule, unlike the interrupted one); `True` resumes so anyway, with a warning.
        remove_unused_columns (`bool`, *optional*, defaults to `False`):
            Always `False`: the prepared dataset holds exactly the columns the VRM collator reads.
    """

    num_objectives: int = field(default=32, metadata={"help": "D, the number of objectives (weights w)."})
    num_features: int = field(default=4, metadata={"help": "d, the number of semantic features z."})
    concentration_eps: float = field(default=1e-3, metadata={"help": "Floor of the concentrations and feature stds."})
    prior_concentration: float = field(default=1.0, metadata={"help": "alpha_0 of the Dirichlet prior of w."})
    feature_prior_std: float = field(default=1.0, metadata={"help": "Std of the Normal prior of z."})
    beta_w: float = field(default=0.1, metadata={"help": "Weight of KL(q(w|x) || p(w))."})
    beta_z: float = field(default=0.1, metadata={"help": "Weight of KL(q(z|x,y) || p(z)), both responses."})
    supervision_weight: float = field(default=1.0, metadata={"help": "lambda, weight of the supervision loss."})
    supervision_loss: str = field(
        default="bt",
        metadata={"help": "Supervision loss on the mean path.", "choices": list(SUPERVISION_LOSSES)},
    )
    hinge_margin: float = field(default=1.0, metadata={"help": "Margin of the hinge supervision."})
    train_samples: int = field(default=1, metadata={"help": "M, latent samples per pair in training."})
    scoring_samples: int = field(default=0, metadata={"help": "Latent samples when scoring (0: exact moments)."})
    group_column: str = field(default="group", metadata={"help": "Optional column of prompt families."})
    overlong_query: str = field(
        default="error",
        metadata={"help": "Pairs longer than max_length: 'error' or 'skip'.", "choices": ["error", "skip"]},
    )
    resume_with_fresh_optimizer: bool = fresh_optimizer_field()
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Always False: the prepared dataset holds only the columns VRM reads."}
    )

    def __post_init__(self):
        if self.bf16 is None and not self.fp16:
            self.bf16 = bf16_available() and not self.use_cpu
        if self.remove_unused_columns:
            logger.info("VRMConfig keeps remove_unused_columns=False: the VRM collator reads its own columns.")
            self.remove_unused_columns = False
        if self.overlong_query not in ("error", "skip"):
            raise ValueError(f"overlong_query must be 'error' or 'skip', got {self.overlong_query!r}.")
        self.vrm_settings()  # D, d, priors, betas, lambda and the supervision loss are checked here
        super().__post_init__()

    def vrm_settings(self) -> VRMSettings:
        """The settings saved in the trained model's config (checked: a `ValueError` names a bad one)."""
        return VRMSettings(
            num_objectives=self.num_objectives,
            num_features=self.num_features,
            prior_concentration=self.prior_concentration,
            prior_std=self.feature_prior_std,
            beta_w=self.beta_w,
            beta_z=self.beta_z,
            supervision_weight=self.supervision_weight,
            supervision_loss=self.supervision_loss,
            hinge_margin=self.hinge_margin,
            train_samples=self.train_samples,
            scoring_samples=self.scoring_samples,
            eps=self.concentration_eps,
            max_length=self.max_length,
        ).check()


def vrm_only_arguments(exclude: type | None = None) -> type:
    """A dataclass of the [`VRMConfig`] fields that `trl.RewardConfig` (and `exclude`, e.g. `ICRMConfig`) lack, for a
    command line that parses them next to another training config."""
    taken = {f.name for f in fields(RewardConfig)} | ({f.name for f in fields(exclude)} if exclude else set())
    specs = [
        (f.name, f.type, field(default=f.default, metadata=f.metadata))
        for f in fields(VRMConfig)
        if f.name not in taken and f.init
    ]
    return make_dataclass("VRMArguments", specs)


__all__ = ["VRMConfig", "vrm_only_arguments"]
