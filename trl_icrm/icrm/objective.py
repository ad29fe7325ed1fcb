# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The variational Beta-Bradley-Terry objective of ICRM (negative ELBO), in pure torch.

For a pair (x, y_a, y_b) scored with the same demonstrations, the two-headed model gives rewards r_a, r_b and
confidence logits c_a, c_b. The variational posterior over the latent preference probability p = P(y_a > y_b) is

    mu = sigmoid(r_a - r_b),  kappa = softplus(c) + eps,  tau = kappa_a + kappa_b
    q(p) = Beta(mu * tau, (1 - mu) * tau)

and the loss for a (possibly soft) label z in [0, 1] is

    -( z * E_q[log p] + (1 - z) * E_q[log(1 - p)] ) + kl_coef * KL(q || Beta(alpha0, beta0)).

Example:

```python
>>> import torch
>>> from trl_icrm.icrm.objective import icrm_loss
>>> out = icrm_loss(torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([1.0]), torch.tensor([1.0]))
>>> out.loss.item() > 0, out.mu.item() > 0.5
(True, True)
```
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch.distributions import Beta, kl_divergence


DEFAULT_MIN_CONCENTRATION = 1e-4
"""Beta concentrations take at least this value, so digamma / lgamma stay finite for saturated preferences."""

DEFAULT_MAX_CONCENTRATION = 1e6
"""... and at most this value, so lgamma differences in the KL stay finite in fp32 for huge confidences."""


@dataclass
class ICRMLossOutput:
    """Loss and posterior of a batch of pairs; every tensor but `loss` has one entry per pair."""

    loss: torch.Tensor
    nll: torch.Tensor
    kl: torch.Tensor
    mu: torch.Tensor
    tau: torch.Tensor
    alpha: torch.Tensor
    beta: torch.Tensor


def confidence(confidence_logits: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """The evidence kappa = softplus(logit) + eps carried by one response."""
    return F.softplus(confidence_logits) + eps


def clamp_keeping_gradient(values: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """`values` clamped to [low, high], with the gradient of `values` itself (a straight-through clamp).

    A plain clamp has zero gradient outside the range: a confidently wrong pair (alpha at the floor) would stop
    learning, and the KL would stop pulling an over-confident one back. Inside the range both are the same.
    """
    return values.clamp(low, high).detach() + (values - values.detach())


def beta_posterior(
    mu: torch.Tensor,
    tau: torch.Tensor,
    min_concentration: float = DEFAULT_MIN_CONCENTRATION,
    max_concentration: float = DEFAULT_MAX_CONCENTRATION,
    margin: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Beta parameters (alpha, beta) = (mu * tau, (1 - mu) * tau), kept in a finite, positive range (values clamped,
    gradients kept: [`clamp_keeping_gradient`]). With the `margin` r_a - r_b they are computed as
    (sigmoid(margin) tau, sigmoid(-margin) tau), which keeps beta exact in float32 when mu is within 1e-7 of 1."""
    if margin is None:
        alpha, beta = mu * tau, (1 - mu) * tau
    else:
        alpha, beta = torch.sigmoid(margin) * tau, torch.sigmoid(-margin) * tau
    return (
        clamp_keeping_gradient(alpha, min_concentration, max_concentration),
        clamp_keeping_gradient(beta, min_concentration, max_concentration),
    )


def pair_posterior(
    rewards_a: torch.Tensor,
    rewards_b: torch.Tensor,
    kappa_a: torch.Tensor,
    kappa_b: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean mu = sigmoid(r_a - r_b) of P(y_a > y_b) and its total evidence tau = kappa_a + kappa_b."""
    return torch.sigmoid(rewards_a - rewards_b), kappa_a + kappa_b


def expected_log_likelihood(alpha: torch.Tensor, beta: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """E_{p ~ Beta(alpha, beta)}[ z log p + (1 - z) log(1 - p) ] for labels z in [0, 1]."""
    digamma_total = torch.digamma(alpha + beta)
    return labels * (torch.digamma(alpha) - digamma_total) + (1 - labels) * (torch.digamma(beta) - digamma_total)


def icrm_loss_from_posterior(
    mu: torch.Tensor,
    tau: torch.Tensor,
    labels: torch.Tensor | float = 1.0,
    prior_alpha: float = 1.0,
    prior_beta: float = 1.0,
    kl_coef: float = 0.1,
    min_concentration: float = DEFAULT_MIN_CONCENTRATION,
    max_concentration: float = DEFAULT_MAX_CONCENTRATION,
    margin: torch.Tensor | None = None,
) -> ICRMLossOutput:
    """Negative ELBO of ICRM for posteriors given as (mu, tau); `loss` is the batch mean.

    Args:
        mu, tau: Posterior mean of P(y_a > y_b) and its total evidence, shape `(batch,)` ([`pair_posterior`]).
        labels: z in [0, 1], the probability that y_a is preferred (1 for hard labels with y_a = chosen).
        prior_alpha, prior_beta: The Beta prior (default Beta(1, 1), uniform).
        kl_coef: Weight of KL(q || prior); > 0 gives the interior optimum with finite confidence.
        min_concentration, max_concentration: Range of the posterior's alpha and beta, for numerical safety (values
            clamped, gradients kept).
        margin: Optionally r_a - r_b with mu = sigmoid(margin), for precision near saturation ([`beta_posterior`]).
    """
    alpha, beta = beta_posterior(mu, tau, min_concentration, max_concentration, margin)
    labels = torch.as_tensor(labels, dtype=alpha.dtype, device=alpha.device).expand_as(alpha)
    if ((labels < 0) | (labels > 1)).any():
        raise ValueError("ICRM labels are probabilities that y_a is preferred: they must lie in [0, 1].")
    nll = -expected_log_likelihood(alpha, beta, labels)
    prior = Beta(torch.full_like(alpha, prior_alpha), torch.full_like(beta, prior_beta))
    kl = kl_divergence(Beta(alpha, beta), prior)
    per_pair = nll + kl_coef * kl
    return ICRMLossOutput(loss=per_pair.mean(), nll=nll, kl=kl, mu=mu, tau=tau, alpha=alpha, beta=beta)


def icrm_loss(
    rewards_a: torch.Tensor,
    rewards_b: torch.Tensor,
    confidence_logits_a: torch.Tensor,
    confidence_logits_b: torch.Tensor,
    labels: torch.Tensor | float = 1.0,
    *,
    eps: float = 1e-3,
    **objective: float,
) -> ICRMLossOutput:
    """Negative ELBO of ICRM for a batch of pairs from the two heads' raw outputs: their posterior
    ([`pair_posterior`]) scored by [`icrm_loss_from_posterior`].

    Args:
        rewards_a, rewards_b: Reward-head outputs r for y_a and y_b, shape `(batch,)`.
        confidence_logits_a, confidence_logits_b: Confidence-head outputs (before softplus), shape `(batch,)`.
        labels: z in [0, 1], the probability that y_a is preferred (1 for hard labels with y_a = chosen).
        eps: Floor of the per-response evidence kappa = softplus(c) + eps.
        **objective: The settings of the objective, `prior_alpha`, `prior_beta`, `kl_coef`, `min_concentration`,
            `max_concentration`: see [`icrm_loss_from_posterior`] (defaults: Beta(1, 1) prior, `kl_coef=0.1`).
    """
    mu, tau = pair_posterior(
        rewards_a, rewards_b, confidence(confidence_logits_a, eps), confidence(confidence_logits_b, eps)
    )
    return icrm_loss_from_posterior(mu, tau, labels, margin=rewards_a - rewards_b, **objective)


def response_posterior(
    rewards: torch.Tensor, confidence_logits: torch.Tensor, eps: float = 1e-3
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean sigmoid(r) and variance sigmoid(r)(1 - sigmoid(r)) / (kappa + 1) of one response against a neutral one."""
    mean = torch.sigmoid(rewards)
    return mean, mean * (1 - mean) / (confidence(confidence_logits, eps) + 1)
