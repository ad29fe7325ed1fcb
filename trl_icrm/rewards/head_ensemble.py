# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`HeadEnsembleReward`]: M reward heads on one shared frozen backbone, on the reward-posterior interface.

The backbone runs once per completion; the M heads read its pooled feature (`trl_icrm.uncertainty.HeadEnsemble`).
Per completion, `mean` and `variance` are the mean and (population) variance of the M members' scores
(`scale="score"`), and `reward` is their aggregate under `method` (`trl_icrm.rewards.penalties.aggregate_ensemble`):
`"mean"`, `"worst_case"` (the minimum over members), `"mean_minus_std"` or `"uncertainty_weighted"` (mean - k var).
The penalties `lcb` / `var_penalty` apply to the posterior as for every model (`var_penalty` with the members'
variance is the uncertainty-weighted objective).

Example:

```python
from trl_icrm import load_reward

reward = load_reward("outputs/math-head-ensemble", method="worst_case")  # kind "head_ensemble", read from the folder
reward(prompts=["What is 2 + 2?"], completions=[" 4"])
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .members import MemberScoresReward, check_method, member_posterior


class HeadEnsembleReward(MemberScoresReward):
    """
    A head ensemble (M heads on one frozen backbone) as a reward posterior and a TRL reward function.

    Args:
        model: A head ensemble folder (from `trl-icrm train --method head_ensemble`), or a loaded
            [`~trl_icrm.uncertainty.HeadEnsemble`] (then pass `backbone` as a loaded model and `tokenizer`).
        tokenizer: The tokenizer with a loaded ensemble.
        backbone: The backbone, if not the one the folder records (the same weights elsewhere), or the loaded
            backbone model with a loaded ensemble.
        method: Aggregate of the members' scores giving `reward` (see the module's docstring).
        coef: k of `"mean_minus_std"` and `"uncertainty_weighted"`.
        batch_size: Completions per backbone forward pass.
        max_length: Tokens kept per completion (default: as at training).
        feature_cache_dir: A feature cache folder to read and fill (default: none; scoring keeps nothing).
        name, penalty, penalty_coef: See [`RewardModel`].
    """

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer: Any = None,
        *,
        backbone: str | os.PathLike | Any = None,
        method: str = "mean",
        coef: float = 1.0,
        batch_size: int = 16,
        max_length: int | None = None,
        feature_cache_dir: str | os.PathLike | None = None,
        name: str = "head_ensemble",
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        trust_remote_code: bool = False,
    ):
        from ..models.features import FeatureEncoder
        from ..uncertainty import HeadEnsemble
        from ..uncertainty.fit import load_head_ensemble

        super().__init__(method=method, coef=coef, penalty=penalty, penalty_coef=penalty_coef, name=name)
        if isinstance(model, HeadEnsemble):
            if backbone is None or tokenizer is None or isinstance(backbone, (str, os.PathLike)):
                raise ValueError(
                    "Pass the loaded backbone model (`backbone=`) and `tokenizer` with a loaded ensemble."
                )
            self.heads, self.model = model.eval(), backbone
        else:
            self.heads, self.model, tokenizer = load_head_ensemble(model, backbone, trust_remote_code)
        self.tokenizer = tokenizer
        self.max_length = max_length or self.heads.config.max_length
        self.encoder = FeatureEncoder(
            self.model, tokenizer, cache_dir=feature_cache_dir, batch_size=batch_size, max_length=self.max_length,
            keep_in_memory=False,
        )  # fmt: skip
        expected = self.heads.config.backbone_fingerprint
        if expected is not None and expected != self.encoder.fingerprint:
            raise ValueError(
                f"The heads were trained on the features of another backbone (fingerprint {expected}, this one "
                f"{self.encoder.fingerprint}): load the backbone they were trained on."
            )

    @property
    def num_members(self) -> int:
        return self.heads.num_members

    def to(self, device: Any) -> HeadEnsembleReward:
        """Move the backbone and the heads to `device`; returns `self`."""
        self.heads.to(device)
        return super().to(device)

    @torch.no_grad()
    def member_scores(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """`(num_members, len(completions))` scores: one backbone pass per completion, then the M heads."""
        features = self.encoder.encode(prompts, completions)
        device = next(self.heads.parameters()).device
        return self.heads(features.to(device)).T.double().cpu().numpy()


__all__ = ["HeadEnsembleReward", "check_method", "member_posterior"]
