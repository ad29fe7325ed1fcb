# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`LaplaceReward`]: a BT reward model with its Laplace posterior, on the reward-posterior interface.

Per completion, `reward` and `mean` are the MAP reward r_MAP(x, y) (what the plain BT model scores) and `variance`
is Lambda(x, y), the GLM predictive variance of the Laplace posterior (`scale="score"`). The penalties of
`trl_icrm.rewards.penalties` then give the seed's uncertainty-aware rewards: `lcb` = r_MAP - k sqrt(Lambda) (the std
penalty) and `var_penalty` = r_MAP - k Lambda; several seeds' models in an `EnsembleReward` are "LA Ens".

Example:

```python
from trl_icrm import load_reward

reward = load_reward("outputs/math-bt-lora", penalty="lcb", penalty_coef=1.0)  # kind "laplace": a posterior is there
reward(prompts=["What is 2 + 2?"], completions=["4"])
```
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

from ..demonstrations import DemonstrationRenderer
from .base import RewardModel, RewardPosterior


logger = logging.getLogger(__name__)


class LaplaceReward(RewardModel):
    """
    A Bradley-Terry reward model with a Laplace posterior over its LoRA weights (or score head): MAP reward and GLM
    predictive variance per completion.

    Args:
        model: The reward model folder (with `laplace_<subset>.safetensors` next to it, from `trl-icrm laplace`), or a
            [`~trl_icrm.laplace.LaplacePosterior`] already fitted or loaded.
        subset: `"auto"` (the one posterior saved; with both, the last-layer one, said in a warning), `"lora"` or
            `"last_layer"`.
        chunk_size: Completions per forward (and, for the LoRA subset, backward) pass; default 16.
        max_length: Tokens kept per completion (as when fitting).
        name, penalty, penalty_coef: See [`RewardModel`].
    """

    scale = "score"
    has_uncertainty = True

    def __init__(
        self,
        model: str | os.PathLike | Any,
        tokenizer: Any = None,
        *,
        subset: str = "auto",
        chunk_size: int | None = None,
        max_length: int | None = 1024,
        name: str = "laplace_reward",
        penalty: str | None = None,
        penalty_coef: float = 1.0,
        trust_remote_code: bool = False,
    ):
        from ..laplace import LaplacePosterior, load_posterior

        super().__init__(penalty=penalty, penalty_coef=penalty_coef, name=name)
        if isinstance(model, LaplacePosterior):
            if tokenizer is None:
                raise ValueError("Pass the tokenizer along with a fitted posterior.")
            self.posterior = model
        else:
            from ..laplace import load_bt_model

            loaded, loaded_tokenizer = load_bt_model(model, trust_remote_code=trust_remote_code)
            path = None if subset == "auto" else _posterior_path(model, subset)
            self.posterior = load_posterior(loaded, tokenizer or loaded_tokenizer, subset, path or _auto_path(model))
            tokenizer = tokenizer or loaded_tokenizer
        self.tokenizer = tokenizer
        self.renderer = DemonstrationRenderer(tokenizer)
        self.chunk_size = chunk_size or 16
        self.max_length = max_length

    @property
    def subset(self) -> str:
        return self.posterior.subset

    def to(self, device: Any) -> LaplaceReward:
        """Move the reward model and its posterior to `device` (the reward server's `--device`); returns `self`."""
        self.posterior.to(device)
        return self

    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        """MAP reward (`reward`, `mean`) and Laplace predictive variance of every completion."""
        from ..laplace.adapter import pack_rows

        rows = self.renderer.encode_queries(prompts, completions, self.max_length)
        mean, variance = self.posterior.predict_rows(pack_rows(rows), self.chunk_size)
        mean, variance = mean.numpy(), variance.numpy()
        return RewardPosterior(mean, mean, variance, self.scale)


def _posterior_path(model: str | os.PathLike, subset: str):
    from ..laplace import posterior_file
    from ..utils.default_model import resolve_model_name_or_path

    return posterior_file(resolve_model_name_or_path(model), subset)


def _auto_path(model: str | os.PathLike):
    from ..laplace import saved_subsets

    folder = os.fspath(model)
    saved = saved_subsets(folder)
    if not saved:
        raise FileNotFoundError(
            f"No Laplace posterior next to {folder}; fit one with `trl-icrm laplace --model_name_or_path {folder}`."
        )
    subset = "last_layer" if "last_layer" in saved else saved[0]
    if len(saved) > 1:
        logger.warning(
            "%s holds Laplace posteriors of %s; using the %s one (pass subset=... to choose).", folder, saved, subset
        )
    return _posterior_path(model, subset)


__all__ = ["LaplaceReward"]
