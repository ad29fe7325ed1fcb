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

from .members import MemberScoresReward


class LoRAEnsembleReward(MemberScoresReward):
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

        super().__init__(method=method, coef=coef, penalty=penalty, penalty_coef=penalty_coef, name=name)
        self.model, self.tokenizer, self.adapters = load_lora_ensemble(model, trust_remote_code)
        self.renderer = DemonstrationRenderer(self.tokenizer)
        self.batch_size, self.max_length, self.share_lower = batch_size, max_length, share_lower

    @property
    def num_members(self) -> int:
        return len(self.adapters)

    def member_scores(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """`(num_members, len(completions))` scores of every member."""
        from ..models import pad_right
        from ..uncertainty.lora_ensemble import lora_member_scores

        rows = self.renderer.encode_queries(prompts, completions, self.max_length)
        device = next(self.model.parameters()).device
        scores = np.empty((self.num_members, len(rows)))
        for start in range(0, len(rows), self.batch_size):
            ids, mask = pad_right(rows[start : start + self.batch_size], self.tokenizer.pad_token_id, device)
            batch = lora_member_scores(self.model, self.adapters, ids, mask, self.share_lower)
            scores[:, start : start + len(ids)] = batch.double().cpu().numpy()
        return scores


__all__ = ["LoRAEnsembleReward"]
