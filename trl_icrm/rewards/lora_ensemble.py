# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`LoRAEnsembleReward`]: M LoRA adapters on one base model, on the reward-posterior interface.

Per completion, `mean` and `variance` are the mean and (population) variance of the M members' BT scores
(`scale="score"`), `reward` their aggregate under `method` (`"mean"`, `"worst_case"`, `"mean_minus_std"`,
`"uncertainty_weighted"`). Members adapted only in the last L blocks share the blocks below: they run once per batch
(`trl_icrm.uncertainty.lora_ensemble`).

Example:

```python
from trl_icrm import load_reward

reward = load_reward("outputs/math-lora-ensemble", method="worst_case")  # kind "lora_ensemble", read from the folder
reward(prompts=["What is 2 + 2?"], completions=[" 4"])
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from .base import RewardModel, RewardPosterior
from .head_ensemble import check_method, member_posterior


class LoRAEnsembleReward(RewardModel):
    """
    A LoRA ensemble (PEFT multi-adapter on one base model) as a reward posterior and a TRL reward function.

    Args:
        model: A LoRA ensemble folder (from `trl-icrm train --method lora_ensemble`).
        method, coef: Aggregate of the members' scores giving `reward` (as a head ensemble's).
        batch_size: Completions per forward pass.
        max_length: Tokens kept per completion (`None`: all).
        share_lower: Run the blocks below the adapted ones once per batch (the scores are the same either way).
        name, penalty, penalty_coef: See [`RewardModel`].
    """

    scale = "score"
    has_uncertainty = True

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        method: str = "mean",
        coef: float = 1.0,
        batch_size: int = 16,
        max_length: int | None = None,
        share_lower: bool = True,
        name: str = "lora_ensemble",
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        trust_remote_code: bool = False,
    ):
        from ..demonstrations import DemonstrationRenderer
        from ..uncertainty.lora_ensemble import load_lora_ensemble

        super().__init__(penalty=penalty, penalty_coef=penalty_coef, name=name)
        check_method(method)
        self.model, self.tokenizer, self.adapters = load_lora_ensemble(model, trust_remote_code)
        self.renderer = DemonstrationRenderer(self.tokenizer)
        self.method, self.coef, self.batch_size = method, coef, batch_size
        self.max_length, self.share_lower = max_length, share_lower

    @property
    def num_members(self) -> int:
        return len(self.adapters)

    def to(self, device: Any) -> LoRAEnsembleReward:
        """Move the model (base and every adapter) to `device`; returns `self`."""
        self.model.to(device)
        return self

    def member_scores(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """`(num_members, len(completions))` scores of every member."""
        from ..models import pad_right
        from ..uncertainty.lora_ensemble import lora_member_scores

        rows = [self.renderer.encode_query(p, c) for p, c in zip(prompts, completions, strict=True)]
        rows = [row[: self.max_length] if self.max_length else row for row in rows]
        device = next(self.model.parameters()).device
        scores = np.empty((self.num_members, len(rows)))
        for start in range(0, len(rows), self.batch_size):
            ids, mask = pad_right(rows[start : start + self.batch_size], self.tokenizer.pad_token_id, device)
            batch = lora_member_scores(self.model, self.adapters, ids, mask, self.share_lower)
            scores[:, start : start + len(ids)] = batch.double().cpu().numpy()
        return scores

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        """The members' aggregate (`reward`), mean and variance of every completion."""
        return member_posterior(self.member_scores(prompts, completions), self.method, self.coef, self.scale)


__all__ = ["LoRAEnsembleReward"]
