# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""[`VRMReward`]: a VRM (variational reward modeling) model as a reward posterior and a TRL reward function
(`GRPOTrainer` / `RLOOTrainer` `reward_funcs`, `BestOfNSampler`, ensembles, the reward server).

The reward of a completion is the posterior mean r_bar = E[w]^T (G mu + b) of r = w^T (G z + b) under
q(w | x) q(z | x, y); its variance comes from both latents, exactly ([`~trl_icrm.vrm.objective.reward_moments`]) or by
Monte Carlo (`scoring_samples > 0`). `trl_icrm.load_reward` loads a saved VRM model as a `VRMReward`.

Example:

```python
from trl_icrm import load_reward

reward = load_reward("vrm-model", penalty="lcb", penalty_coef=1.0)  # mean - 1 std
reward(prompts=["What is 2 + 2?"], completions=["4"])               # one float per completion
posterior = reward.score(["What is 2 + 2?"], ["4"])                  # .reward, .mean, .variance
```
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedModel

from ..demonstrations import DemonstrationRenderer
from ..models import pad_right
from ..vrm.modeling import VRMHeadOutput, encode_prompt, load_vrm_model, prompt_length, vrm_forward, vrm_settings_of
from ..vrm.objective import mean_reward, mean_weights, reward_moments, sample_rewards
from .base import RewardPosterior
from .scoring import TrainedRewardModel, model_device


class VRMReward(TrainedRewardModel, load_model=load_vrm_model, settings_of=vrm_settings_of, default_name="vrm"):
    """
    A VRM reward model as a reward posterior and a TRL reward function.

    The reward (`penalty`): `None` and `"mean"` give the posterior mean r_bar, `"lcb"` r_bar - k std and
    `"var_penalty"` r_bar - k var (k = `penalty_coef`), with the variance of r over q(w | x) q(z | x, y).
    Completions are rendered as `trl.RewardTrainer` renders them (as in training).

    Args:
        model: A trained VRM model: folder, PEFT adapter folder, or a loaded model (then pass `tokenizer`).
        tokenizer: The model's tokenizer when `model` is a loaded model.
        batch_size: Sequences per forward pass.
        scoring_samples: Monte Carlo samples for the mean and variance (default: the model's setting; 0: exact).
        seed: Seed of the Monte Carlo samples.
        **common: `penalty` (`None`, `"mean"`, `"lcb"` or `"var_penalty"`), `penalty_coef` (k of the uncertainty
            penalties), `name` (default `"vrm"`) and `trust_remote_code`: see [`TrainedRewardModel`].
    """

    scale = "score"

    def __init__(
        self,
        model: str | PreTrainedModel,
        tokenizer=None,
        *,
        batch_size: int = 16,
        scoring_samples: int | None = None,
        seed: int = 0,
        **common: Any,
    ):
        super().__init__(model, tokenizer, **common)
        self.renderer = DemonstrationRenderer(self.tokenizer)
        self.batch_size = batch_size
        self.scoring_samples = self.settings.scoring_samples if scoring_samples is None else scoring_samples
        if self.scoring_samples < 0:
            raise ValueError(f"scoring_samples must be >= 0 (0: exact moments), got {self.scoring_samples}.")
        self.seed = seed

    def encode(self, prompts: Sequence[Any], completions: Sequence[Any]) -> list[tuple[list[int], int]]:
        """`(token ids, prompt length)` of every completion, as in training."""
        encoded = []
        for prompt, completion in zip(prompts, completions, strict=True):
            ids = self.renderer.encode_query(prompt, completion)
            encoded.append((ids, prompt_length(ids, encode_prompt(self.tokenizer, prompt))))
        return encoded

    @torch.inference_mode()
    def latents(self, prompts: Sequence[Any], completions: Sequence[Any]) -> VRMHeadOutput:
        """The variational posteriors of every completion: the Dirichlet concentration of q(w | x) `(n, D)`, the
        mean and std of q(z | x, y) `(n, d)`, and the score map G, b."""
        encoded = self.encode(prompts, completions)
        device = model_device(self.model)
        parts = []
        for start in range(0, len(encoded), self.batch_size):
            chunk = encoded[start : start + self.batch_size]
            ids, mask = pad_right([row for row, _ in chunk], self.tokenizer.pad_token_id, device)
            lengths = torch.tensor([length for _, length in chunk], device=device)
            parts.append(vrm_forward(self.model, ids, mask, lengths))
        return VRMHeadOutput(
            torch.cat([p.concentration for p in parts]).float(),
            torch.cat([p.feature_mean for p in parts]).float(),
            torch.cat([p.feature_std for p in parts]).float(),
            parts[0].score_weight.detach().float(),
            parts[0].score_bias.detach().float(),
        )

    def objective_weights(self, prompts: Sequence[Any], completions: Sequence[Any]) -> np.ndarray:
        """E[w | x], the posterior mean of the objective weights, `(n, D)` (one row per completion)."""
        return mean_weights(self.latents(prompts, completions).concentration).double().cpu().numpy()

    def _moments(self, head: VRMHeadOutput) -> tuple[torch.Tensor, torch.Tensor]:
        args = (head.concentration, head.feature_mean, head.feature_std, head.score_weight, head.score_bias)
        if self.scoring_samples == 0:
            return reward_moments(*args)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            draws = sample_rewards(*args, num_samples=self.scoring_samples)
        return draws.mean(0), draws.var(0)

    @torch.no_grad()
    def score(self, prompts: Sequence[Any], completions: Sequence[Any], **columns) -> RewardPosterior:
        """r_bar and the mean and variance of r per completion, with the entropy of E[w] and the total Dirichlet
        concentration as extras."""
        head = self.latents(prompts, completions)
        reward = mean_reward(head.concentration, head.feature_mean, head.score_weight, head.score_bias)
        mean, variance = self._moments(head)
        weights = mean_weights(head.concentration)
        extras = {
            "weight_entropy": _numpy(-(weights * weights.clamp_min(1e-12).log()).sum(-1)),
            "concentration": _numpy(head.concentration.sum(-1)),
        }
        return RewardPosterior(_numpy(reward), _numpy(mean), _numpy(variance), self.scale, extras)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().double().numpy()


__all__ = ["VRMReward"]
