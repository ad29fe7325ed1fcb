# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Configuration of [`ICRMRewardTrainer`]."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from trl import RewardConfig

from ..demonstrations import DemonstrationTemplate
from ..icrm.modeling import ICRMSettings


logger = logging.getLogger(__name__)


def bf16_available() -> bool:
    """Whether a CUDA device with bf16 support is present (TRL's bf16 default only pays off there)."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def fresh_optimizer_field() -> Any:
    """The `resume_with_fresh_optimizer` field of the pair trainers' configs (one definition for both)."""
    return field(
        default=False,
        metadata={
            "help": "Resume from a checkpoint without optimizer.pt / scheduler.pt with a fresh optimizer or schedule "
            "(a warning) instead of an error."
        },
    )


@dataclass
class ICRMConfig(RewardConfig):
    r"""
    Configuration class for the [`ICRMRewardTrainer`].

    Includes only the parameters specific to ICRM training; see [`~trl.RewardConfig`] and
    [`~transformers.TrainingArguments`] for the rest. Unlike TRL, `bf16` defaults to `True` only where a CUDA device
    supports it: on CPU, bf16 autocast is much slower than fp32. `max_length` bounds the whole input (demonstrations + query):
    whole demonstrations are dropped until it fits; the query itself is never cut.

    Parameters:
        > Parameters that control the demonstrations

        group_column (`str`, *optional*, defaults to `"group"`):
            Dataset column naming the preference distribution (objective, user, task family) of each pair.
            Demonstrations of a pair are drawn from its own group, never including the pair itself.
        label_column (`str`, *optional*, defaults to `"label"`):
            Optional dataset column of soft labels z in [0, 1] (probability that `chosen` is preferred). Without
            it every pair has z = 1.
        min_demonstrations (`int`, *optional*, defaults to `0`):
            K_min: the fewest demonstrations drawn for a pair.
        max_demonstrations (`int`, *optional*, defaults to `8`):
            K_max: the most demonstrations drawn for a pair. K is drawn uniformly from [K_min, K_max] per pair and
            the demonstrations are re-drawn every epoch.
        demonstration_seed (`int`, *optional*):
            Seed of the demonstration draws (defaults to `seed`). Evaluation draws do not depend on the epoch.
        demonstration_template (`dict[str, str]` or `str`, *optional*):
            Fields of [`DemonstrationTemplate`] (or a JSON string of them) to override; saved in the model config.
        overlong_query (`str`, *optional*, defaults to `"error"`):
            What to do with a pair whose query alone exceeds `max_length`: `"error"` raises an error naming it,
            `"skip"` drops such pairs from the dataset (with a count in the log), as `trl.RewardTrainer` does.

        batch_together_column (`str`, *optional*):
            Dataset column whose equal values are put in the same training batch, in a random order of such units
            re-drawn every epoch (e.g. an id of the same pair under two conflicting objectives). With each pair next
            to its flipped twin, the part of the gradient that does not depend on the demonstrations cancels within
            a batch, leaving the signal that teaches the model to read them. Default: plain random batches.
        share_demonstration_prefix (`bool`, *optional*):
            Encode the demonstrations of a pair once and read both of its responses after them (one key-value cache
            per pair, no padding across pairs) instead of running two full padded sequences. Loss and gradients are
            the same. With gradient checkpointing (TRL's default) each pair is instead one sequence, prefix + chosen
            + rejected, whose attention mask keeps the rejected response from seeing the chosen one: the prefix is
            still encoded once, and memory stays that of checkpointing. Defaults to on when training on CPU, where it
            is the faster path with long demonstrations; on GPUs the batched path usually wins. Needs one process and
            no DeepSpeed/FSDP; otherwise the batched path is used (with a warning if it was asked for).

        > Parameters of the variational objective

        prior_alpha (`float`, *optional*, defaults to `1.0`):
            alpha0 of the Beta prior over the preference probability.
        prior_beta (`float`, *optional*, defaults to `1.0`):
            beta0 of the Beta prior.
        kl_coef (`float`, *optional*, defaults to `0.1`):
            Weight of KL(q || prior) in the loss. It gives the loss an interior optimum with finite confidence.
        confidence_eps (`float`, *optional*, defaults to `1e-3`):
            Floor of the per-response evidence kappa = softplus(c) + eps.
        ece_bins (`int`, *optional*, defaults to `10`):
            Bins of the expected calibration error reported at evaluation.
        resume_with_fresh_optimizer (`bool`, *optional*, defaults to `False`):
            Resuming from a checkpoint that lacks `optimizer.pt` or `scheduler.pt` is an error (the run would go on
            with a fresh optimizer or schedule, unlike the interrupted one); `True` resumes so anyway, with a warning.
        remove_unused_columns (`bool`, *optional*, defaults to `False`):
            Always `False` (a `True` is reset): the prepared dataset holds exactly the columns the collator reads.
    """

    _VALID_DICT_FIELDS = RewardConfig._VALID_DICT_FIELDS + ["demonstration_template"]

    group_column: str = field(default="group", metadata={"help": "Column naming each pair's preference group."})
    label_column: str = field(default="label", metadata={"help": "Optional column of soft labels in [0, 1]."})
    min_demonstrations: int = field(default=0, metadata={"help": "K_min, the fewest demonstrations per pair."})
    max_demonstrations: int = field(default=8, metadata={"help": "K_max, the most demonstrations per pair."})
    demonstration_seed: int | None = field(default=None, metadata={"help": "Seed of the draws (default: `seed`)."})
    demonstration_template: dict[str, Any] | str | None = field(
        default=None, metadata={"help": "DemonstrationTemplate fields to override (dict or JSON string)."}
    )
    overlong_query: str = field(
        default="error",
        metadata={
            "help": "Pairs whose query alone exceeds max_length: 'error' or 'skip'.",
            "choices": ["error", "skip"],
        },
    )
    batch_together_column: str | None = field(
        default=None, metadata={"help": "Rows with equal values in this column are batched together."}
    )
    share_demonstration_prefix: bool | None = field(
        default=None,
        metadata={"help": "Encode each pair's demonstrations once for both responses (default: on CPU)."},
    )
    prior_alpha: float = field(default=1.0, metadata={"help": "alpha0 of the Beta prior."})
    prior_beta: float = field(default=1.0, metadata={"help": "beta0 of the Beta prior."})
    kl_coef: float = field(default=0.1, metadata={"help": "Weight of KL(q || prior)."})
    confidence_eps: float = field(default=1e-3, metadata={"help": "Floor of the evidence kappa."})
    ece_bins: int = field(default=10, metadata={"help": "Bins of the expected calibration error."})
    resume_with_fresh_optimizer: bool = fresh_optimizer_field()
    remove_unused_columns: bool = field(
        default=False,
        metadata={"help": "Always False: the prepared dataset holds only the columns the ICRM collator reads."},
    )

    def __post_init__(self):
        if self.bf16 is None and not self.fp16:
            # TRL turns bf16 autocast on whenever it is unset; on CPU that is slow and imprecise, so keep fp32 there.
            self.bf16 = bf16_available() and not self.use_cpu
        if self.dataloader_persistent_workers and self.dataloader_num_workers > 0:
            logger.warning(
                "ICRMConfig turns dataloader_persistent_workers off: persistent workers keep their copy of the "
                "collator, which would then never re-draw demonstrations in a new epoch."
            )
            self.dataloader_persistent_workers = False
        if self.remove_unused_columns:
            logger.info("ICRMConfig keeps remove_unused_columns=False: the ICRM collator reads its own columns.")
            self.remove_unused_columns = False
        super().__post_init__()
        self._check_icrm_fields()
        self.icrm_settings()  # an unknown template field or placeholder fails here, before any training

    def _check_icrm_fields(self) -> None:
        """Raise a `ValueError` naming the field for every ICRM value out of range."""
        if not 0 <= self.min_demonstrations <= self.max_demonstrations:
            raise ValueError(
                f"Need 0 <= min_demonstrations <= max_demonstrations, got {self.min_demonstrations} and "
                f"{self.max_demonstrations}."
            )
        if self.overlong_query not in ("error", "skip"):
            raise ValueError(f"overlong_query must be 'error' or 'skip', got {self.overlong_query!r}.")
        if self.prior_alpha <= 0 or self.prior_beta <= 0:
            raise ValueError("The Beta prior needs prior_alpha > 0 and prior_beta > 0.")
        if self.prior_alpha != self.prior_beta:
            logger.warning(
                "An asymmetric Beta prior (prior_alpha=%s, prior_beta=%s) is a prior that the first response (the "
                "chosen one in training) wins; use equal values unless that is intended.",
                self.prior_alpha,
                self.prior_beta,
            )
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}.")
        if not self.confidence_eps >= 1e-6:
            raise ValueError(
                f"confidence_eps must be >= 1e-6, got {self.confidence_eps}: a smaller floor lets the posterior's "
                "concentration reach the numerical limits of the Beta functions."
            )
        if self.ece_bins < 1:
            raise ValueError(f"ece_bins must be >= 1, got {self.ece_bins}.")

    def icrm_settings(self) -> ICRMSettings:
        """The settings saved in the trained model's config."""
        template: dict[str, Any] = dict(self.demonstration_template or {})
        return ICRMSettings(
            prior_alpha=self.prior_alpha,
            prior_beta=self.prior_beta,
            kl_coef=self.kl_coef,
            eps=self.confidence_eps,
            template=DemonstrationTemplate.from_dict(template),
            max_length=self.max_length,
        )
