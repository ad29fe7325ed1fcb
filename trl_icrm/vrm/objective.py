# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The variational objective of VRM (variational reward modeling), in pure torch.

For a pair (x, y_a, y_b), the model gives the Dirichlet concentration of the objective weights q(w | x), the Normal
posterior q(z | x, y) = Normal(mu, diag sigma^2) of each response's semantic features, and the score map s = G z + b
(one score per objective). The reward is r = w^T s; one w draw is shared by both responses, one z draw per response:

    L = - E_q[ log sigmoid(r_a - r_b) ]                                     (M reparameterized samples)
        + beta_w KL(q(w | x) || Dir(alpha_0 1)) + beta_z [ KL(q(z_a) || N(0, s_0^2 I)) + KL(q(z_b) || N(0, s_0^2 I)) ]
        + lambda L_sup(r_bar_a - r_bar_b)

with the mean-path reward r_bar = E[w]^T (G mu + b) and L_sup the Bradley-Terry log-loss (`"bt"`), a hinge
(`"hinge"`) or nothing (`"none"`). KL terms come from `torch.distributions.kl_divergence`.

[`reward_moments`] gives the exact posterior mean and variance of one response's reward (w and z independent).

Example:

```python
>>> import torch
>>> from trl_icrm.vrm.objective import vrm_loss
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> G, b = torch.randn(3, 2), torch.zeros(3)
>>> out = vrm_loss(torch.ones(1, 3), torch.ones(1, 2), torch.ones(1, 2), -torch.ones(1, 2), torch.ones(1, 2), G, b)
>>> out.loss.shape, out.kl_w.shape
(torch.Size([]), torch.Size([1]))

```
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.distributions import Dirichlet, Normal, kl_divergence


SUPERVISION_LOSSES = ("bt", "hinge", "none")
"""Supervision losses on the mean path: Bradley-Terry log-loss, hinge, or none."""


@dataclass
class VRMLossOutput:
    """Loss and its parts for a batch of pairs; every tensor but `loss` has one entry per pair."""

    loss: torch.Tensor
    nll: torch.Tensor
    kl_w: torch.Tensor
    kl_z: torch.Tensor
    supervision: torch.Tensor
    margin: torch.Tensor
    """Mean-path margin r_bar_a - r_bar_b."""
    reward_a: torch.Tensor
    reward_b: torch.Tensor


def mean_weights(concentration: torch.Tensor) -> torch.Tensor:
    """E[w] = alpha / sum(alpha) of Dirichlet(alpha), along the last dimension."""
    return concentration / concentration.sum(-1, keepdim=True)


def scores(features: torch.Tensor, score_weight: torch.Tensor, score_bias: torch.Tensor) -> torch.Tensor:
    """Multi-objective scores s = G z + b, `(..., D)` from features `(..., d)`, G `(D, d)`, b `(D,)`."""
    return features @ score_weight.T + score_bias


def mean_reward(
    concentration: torch.Tensor, feature_mean: torch.Tensor, score_weight: torch.Tensor, score_bias: torch.Tensor
) -> torch.Tensor:
    """The mean-path reward r_bar = E[w]^T (G mu + b), one per row."""
    return (mean_weights(concentration) * scores(feature_mean, score_weight, score_bias)).sum(-1)


def reward_moments(
    concentration: torch.Tensor,
    feature_mean: torch.Tensor,
    feature_std: torch.Tensor,
    score_weight: torch.Tensor,
    score_bias: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact mean and variance of r = w^T (G z + b) with w ~ Dir(alpha) independent of z ~ N(mu, diag sigma^2).

    With m_w, C_w the Dirichlet mean and covariance and m_s = G mu + b, C_s = G diag(sigma^2) G^T:
    E[r] = m_w^T m_s and Var[r] = tr(C_w C_s) + m_w^T C_s m_w + m_s^T C_w m_s.
    """
    total = concentration.sum(-1, keepdim=True)
    m_w = concentration / total
    c_w = (torch.diag_embed(m_w) - m_w.unsqueeze(-1) * m_w.unsqueeze(-2)) / (total.unsqueeze(-1) + 1)
    m_s = scores(feature_mean, score_weight, score_bias)
    loadings = score_weight * feature_std.unsqueeze(-2)  # (..., D, d): G diag(sigma)
    c_s = loadings @ loadings.transpose(-1, -2)
    mean = (m_w * m_s).sum(-1)
    variance = (
        (c_w * c_s).sum((-1, -2))
        + (m_w.unsqueeze(-2) @ c_s @ m_w.unsqueeze(-1)).reshape(mean.shape)
        + (m_s.unsqueeze(-2) @ c_w @ m_s.unsqueeze(-1)).reshape(mean.shape)
    )
    return mean, variance.clamp_min(0.0)


def sample_rewards(
    concentration: torch.Tensor,
    feature_mean: torch.Tensor,
    feature_std: torch.Tensor,
    score_weight: torch.Tensor,
    score_bias: torch.Tensor,
    num_samples: int,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """`(num_samples, rows)` reparameterized reward draws r = w^T (G z + b); `weights` `(num_samples, rows, D)` are
    used as the w draws when given (to share one w across the responses of a pair)."""
    if weights is None:
        weights = Dirichlet(concentration).rsample((num_samples,))
    features = Normal(feature_mean, feature_std).rsample((num_samples,))
    return (weights * scores(features, score_weight, score_bias)).sum(-1)


def supervision_loss(margin: torch.Tensor, kind: str = "bt", hinge_margin: float = 1.0) -> torch.Tensor:
    """Per-pair supervision on the mean-path margin: `"bt"` -log sigmoid(m), `"hinge"` max(0, hinge_margin - m),
    `"none"` zero."""
    if kind == "bt":
        return -F.logsigmoid(margin)
    if kind == "hinge":
        return F.relu(hinge_margin - margin)
    if kind == "none":
        return torch.zeros_like(margin)
    raise ValueError(f"Unknown supervision loss {kind!r}; choose one of {list(SUPERVISION_LOSSES)}.")


def kl_terms(
    concentration: torch.Tensor,
    feature_means: tuple[torch.Tensor, torch.Tensor],
    feature_stds: tuple[torch.Tensor, torch.Tensor],
    prior_concentration: float = 1.0,
    prior_std: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KL(q(w) || Dir(alpha_0 1)) and the sum over both responses of KL(q(z) || N(0, s_0^2 I)), one per pair."""
    kl_w = kl_divergence(Dirichlet(concentration), Dirichlet(torch.full_like(concentration, prior_concentration)))
    kl_z = sum(
        kl_divergence(Normal(mean, std), Normal(torch.zeros_like(mean), torch.full_like(std, prior_std))).sum(-1)
        for mean, std in zip(feature_means, feature_stds, strict=True)
    )
    return kl_w, kl_z


def vrm_loss(
    concentration: torch.Tensor,
    feature_mean_a: torch.Tensor,
    feature_std_a: torch.Tensor,
    feature_mean_b: torch.Tensor,
    feature_std_b: torch.Tensor,
    score_weight: torch.Tensor,
    score_bias: torch.Tensor,
    prior_concentration: float = 1.0,
    prior_std: float = 1.0,
    beta_w: float = 0.1,
    beta_z: float = 0.1,
    supervision_weight: float = 1.0,
    supervision: str = "bt",
    hinge_margin: float = 1.0,
    num_samples: int = 1,
) -> VRMLossOutput:
    """Negative ELBO plus supervision of VRM for a batch of pairs (y_a preferred to y_b); `loss` is the batch mean.

    Args:
        concentration: Dirichlet concentration alpha of q(w | x), `(batch, D)`, positive.
        feature_mean_a, feature_std_a: mu and sigma of q(z | x, y_a), `(batch, d)`; likewise for y_b.
        score_weight, score_bias: The score map G `(D, d)` and b `(D,)`.
        prior_concentration: alpha_0 of the prior Dir(alpha_0 1).
        prior_std: Standard deviation of the prior N(0, prior_std^2 I) of z.
        beta_w, beta_z: Weights of the two KL terms.
        supervision_weight: lambda, the weight of the supervision loss.
        supervision: `"bt"`, `"hinge"` or `"none"`.
        hinge_margin: Margin of the hinge supervision.
        num_samples: M, reparameterized samples of (w, z_a, z_b) per pair.
    """
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}.")
    weights = Dirichlet(concentration).rsample((num_samples,))  # one w per pair, shared by both responses
    draws = [
        sample_rewards(concentration, mean, std, score_weight, score_bias, num_samples, weights)
        for mean, std in ((feature_mean_a, feature_std_a), (feature_mean_b, feature_std_b))
    ]
    nll = -F.logsigmoid(draws[0] - draws[1]).mean(0)
    kl_w, kl_z = kl_terms(
        concentration, (feature_mean_a, feature_mean_b), (feature_std_a, feature_std_b), prior_concentration, prior_std
    )
    reward_a = mean_reward(concentration, feature_mean_a, score_weight, score_bias)
    reward_b = mean_reward(concentration, feature_mean_b, score_weight, score_bias)
    sup = supervision_loss(reward_a - reward_b, supervision, hinge_margin)
    per_pair = nll + beta_w * kl_w + beta_z * kl_z + supervision_weight * sup
    return VRMLossOutput(per_pair.mean(), nll, kl_w, kl_z, sup, reward_a - reward_b, reward_a, reward_b)


__all__ = [
    "SUPERVISION_LOSSES",
    "VRMLossOutput",
    "kl_terms",
    "mean_reward",
    "mean_weights",
    "reward_moments",
    "sample_rewards",
    "scores",
    "supervision_loss",
    "vrm_loss",
]
