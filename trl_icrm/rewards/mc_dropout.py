# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`MCDropoutReward`]: Monte Carlo dropout on a Bradley-Terry reward model, on the reward-posterior interface.

T stochastic passes with a fixed seed schedule (`trl_icrm.uncertainty.mc_dropout`): dropout on the score head's
input (`where="head"`: the backbone runs once, the T passes are one product on its pooled features) or on the LoRA
path of a PEFT LoRA model (`where="lora"`: T full passes). Per completion, `mean` and `variance` are the mean and
the empirical (population) variance of its T scores (`scale="score"`); `reward` is their aggregate under `method`
(`"mean"`, `"worst_case"`, `"mean_minus_std"`, `"uncertainty_weighted"`).

Example:

```python
from trl_icrm import load_reward

reward = load_reward("outputs/math-bt", kind="mc_dropout", num_passes=16, dropout=0.1, penalty="lcb")
reward(prompts=["What is 2 + 2?"], completions=[" 4"])
```
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import partial
from typing import Any

import numpy as np
import torch

from .members import MemberScoresReward


WHERE = ("head", "lora")
DEFAULT_HEAD_DROPOUT = 0.1


class MCDropoutReward(MemberScoresReward):
    """
    A BT reward model with Monte Carlo dropout: mean and variance over T seeded stochastic passes.

    Args:
        model: A BT reward model folder (merged, or a PEFT adapter folder for `where="lora"`), or a loaded one (then
            pass `tokenizer`).
        num_passes: T, the stochastic passes (at least 2).
        dropout: Dropout probability: on the head's input (default 0.1), or on the LoRA path (default: the
            adapter's own `lora_dropout`).
        where: `"head"` or `"lora"`.
        seed: First seed of the schedule (pass t uses `(seed, t)`).
        method, coef: Aggregate of the T scores giving `reward` (as a head ensemble's).
        batch_size, max_length: Completions per forward pass; tokens kept per completion (`None`: all).
        name, penalty, penalty_coef: See [`RewardModel`].
    """

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer: Any = None,
        *,
        num_passes: int = 16,
        dropout: float | None = None,
        where: str = "head",
        seed: int = 0,
        method: str = "mean",
        coef: float = 1.0,
        batch_size: int = 16,
        max_length: int | None = None,
        name: str = "mc_dropout",
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        trust_remote_code: bool = False,
    ):
        from ..models.features import FeatureEncoder
        from ..uncertainty.mc_dropout import check_dropout, head_dropout_masks, lora_dropout_modules
        from .classifier import load_sequence_classifier
        from .scoring import load_for_scoring

        super().__init__(method=method, coef=coef, penalty=penalty, penalty_coef=penalty_coef, name=name)
        if where not in WHERE:
            raise ValueError(f"where must be one of {WHERE}, got {where!r}.")
        check_dropout(DEFAULT_HEAD_DROPOUT if dropout is None else dropout, num_passes)
        load = partial(load_sequence_classifier, tokenizer=tokenizer, trust_remote_code=trust_remote_code)
        self.model, self.tokenizer = load_for_scoring(model, tokenizer, load)
        self.num_passes, self.dropout, self.where, self.seed = num_passes, dropout, where, seed
        self.batch_size, self.max_length = batch_size, max_length
        self.encoder = FeatureEncoder(
            self.model, self.tokenizer, batch_size=batch_size, max_length=max_length, keep_in_memory=False
        )
        if where == "head":
            p = DEFAULT_HEAD_DROPOUT if dropout is None else dropout
            self.masks = head_dropout_masks(num_passes, self.encoder.hidden_size, p, seed)
        elif not lora_dropout_modules(self.model):
            raise ValueError(
                "where='lora' needs a PEFT LoRA model with `lora_dropout` > 0 (a BT model saved with `trl-icrm train "
                "--method bt --no_merge_lora`); use where='head' for any BT model."
            )

    @torch.no_grad()
    def member_scores(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """`(num_passes, len(completions))` scores, pass t with the dropout of seed `(seed, t)`."""
        if self.where == "head":
            return self._head_passes(prompts, completions)
        return self._lora_passes(self.encoder.rows(prompts, completions))

    pass_scores = member_scores  # the members of MC dropout are its T passes

    def _head_passes(self, prompts, completions) -> np.ndarray:
        from ..laplace.adapter import score_head
        from ..uncertainty.mc_dropout import mc_dropout_head_scores

        head = score_head(self.model)
        features = self.encoder.encode(prompts, completions).to(head.weight.device, torch.float32)
        masks = self.masks.to(features.device)
        return mc_dropout_head_scores(features, head.weight.float(), head.bias, masks).double().cpu().numpy()

    def _lora_passes(self, rows: list[list[int]]) -> np.ndarray:
        from ..models import pad_right
        from ..uncertainty.mc_dropout import lora_dropout_active, pass_seed

        device = next(self.model.parameters()).device
        scores = np.empty((self.num_passes, len(rows)))
        with (
            lora_dropout_active(self.model, self.dropout),
            torch.random.fork_rng(devices=[device] if device.type == "cuda" else []),
        ):
            for t in range(self.num_passes):
                torch.manual_seed(pass_seed(self.seed, t))
                for start in range(0, len(rows), self.batch_size):
                    ids, mask = pad_right(rows[start : start + self.batch_size], self.tokenizer.pad_token_id, device)
                    logits = self.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
                    scores[t, start : start + len(ids)] = logits[:, 0].double().cpu().numpy()
        return scores


__all__ = ["MCDropoutReward"]
