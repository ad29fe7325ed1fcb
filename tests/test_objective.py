# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
import math

import mpmath
import pytest
import torch
import torch.nn.functional as F

from trl_icrm.evaluation.calibration import expected_calibration_error
from trl_icrm.icrm.objective import icrm_loss, icrm_loss_from_posterior, response_posterior


def _reference_loss(r_a, r_b, c_a, c_b, z, a0, b0, kl_coef, eps):
    """Independent closed form with mpmath: -E_q[log-lik] + kl_coef * KL(Beta(a, b) || Beta(a0, b0))."""
    softplus = lambda x: mpmath.log1p(mpmath.exp(x))
    mu = 1 / (1 + mpmath.exp(-(r_a - r_b)))
    tau = softplus(c_a) + eps + softplus(c_b) + eps
    a, b = mu * tau, (1 - mu) * tau
    psi = mpmath.digamma
    nll = -(z * (psi(a) - psi(a + b)) + (1 - z) * (psi(b) - psi(a + b)))
    log_beta = lambda x, y: mpmath.loggamma(x) + mpmath.loggamma(y) - mpmath.loggamma(x + y)
    kl = log_beta(a0, b0) - log_beta(a, b) + (a - a0) * psi(a) + (b - b0) * psi(b) + (a0 - a + b0 - b) * psi(a + b)
    return float(nll + kl_coef * kl)


def test_loss_matches_independent_closed_form():
    generator = torch.Generator().manual_seed(0)
    r_a, r_b, c_a, c_b = (torch.randn(64, generator=generator, dtype=torch.float64) * 2 for _ in range(4))
    z = torch.rand(64, generator=generator, dtype=torch.float64)
    for a0, b0, kl_coef in [(1.0, 1.0, 0.1), (2.0, 0.5, 1.0), (1.0, 1.0, 0.0)]:
        out = icrm_loss(r_a, r_b, c_a, c_b, z, prior_alpha=a0, prior_beta=b0, kl_coef=kl_coef, eps=1e-3)
        per_pair = out.nll + kl_coef * out.kl
        expected = [
            _reference_loss(*(float(t[i]) for t in (r_a, r_b, c_a, c_b, z)), a0, b0, kl_coef, 1e-3) for i in range(64)
        ]
        torch.testing.assert_close(per_pair, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-9)
        assert out.loss.item() == pytest.approx(sum(expected) / 64, rel=1e-9)


def test_kl_is_zero_at_the_prior():
    for a0, b0 in [(1.0, 1.0), (2.0, 3.0), (0.5, 0.5)]:
        mu = torch.tensor([a0 / (a0 + b0)], dtype=torch.float64)
        tau = torch.tensor([a0 + b0], dtype=torch.float64)
        out = icrm_loss_from_posterior(mu, tau, 1.0, prior_alpha=a0, prior_beta=b0)
        assert out.kl.item() == pytest.approx(0.0, abs=1e-12)
    far = icrm_loss_from_posterior(torch.tensor([0.9]), torch.tensor([50.0]), 1.0)
    assert far.kl.item() > 0.1


def test_gradients_finite_and_values_safe_for_extreme_inputs():
    values = [-1e4, -50.0, -1.0, 0.0, 1.0, 50.0, 1e4]
    grid = torch.tensor([(a, b, c, d) for a in values for b in values for c in values[::2] for d in values[::3]])
    r_a, r_b, c_a, c_b = (grid[:, i].clone().requires_grad_(True) for i in range(4))
    out = icrm_loss(r_a, r_b, c_a, c_b, torch.rand(len(grid)), kl_coef=0.5)
    out.loss.backward()
    for tensor in (out.loss, out.nll, out.kl, out.alpha, out.beta, r_a.grad, r_b.grad, c_a.grad, c_b.grad):
        assert torch.isfinite(tensor).all()
    huge = icrm_loss(torch.tensor([3.0]), torch.tensor([0.0]), torch.tensor([1e30]), torch.tensor([1e30]))
    tiny = icrm_loss(torch.tensor([3.0]), torch.tensor([0.0]), torch.tensor([-1e30]), torch.tensor([-1e30]))
    assert torch.isfinite(huge.loss) and torch.isfinite(tiny.loss)


def _optimize_single_pair(kl_coef: float, steps: int) -> tuple[list[float], float]:
    """Minimize the loss of one pair labelled z = 1 over (logit mu, log tau); return tau every 500 steps and the
    final gradient of the loss with respect to log tau."""
    logit_mu = torch.zeros((), dtype=torch.float64, requires_grad=True)
    log_tau = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([logit_mu, log_tau], lr=0.05)
    taus = []
    for step in range(1, steps + 1):
        optimizer.zero_grad()
        out = icrm_loss_from_posterior(torch.sigmoid(logit_mu)[None], log_tau.exp()[None], 1.0, kl_coef=kl_coef)
        out.loss.backward()
        optimizer.step()
        if step % 500 == 0:
            taus.append(log_tau.exp().item())
    return taus, log_tau.grad.item()


def test_interior_optimum_with_kl_and_unbounded_confidence_without():
    with_kl, grad_with_kl = _optimize_single_pair(kl_coef=0.5, steps=4000)
    assert math.isfinite(with_kl[-1]) and with_kl[-1] < 100
    assert abs(with_kl[-1] - with_kl[-2]) / with_kl[-1] < 1e-3  # converged to a finite confidence
    assert abs(grad_with_kl) < 1e-4  # a stationary point
    without_kl, grad_without_kl = _optimize_single_pair(kl_coef=0.0, steps=4000)
    assert all(later > earlier for earlier, later in zip(without_kl, without_kl[1:], strict=False))  # keeps growing
    assert without_kl[-1] > with_kl[-1]
    assert grad_without_kl < 0  # still descending: more confidence always lowers the loss


def test_large_confidence_without_kl_tends_to_bt_loss():
    margins = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0], dtype=torch.float64)
    bt = -F.logsigmoid(margins)
    gaps = []
    for tau in (1e2, 1e3, 1e5):
        out = icrm_loss_from_posterior(torch.sigmoid(margins), torch.full_like(margins, tau), 1.0, kl_coef=0.0)
        gaps.append((out.nll - bt).abs().max().item())
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 1e-3


def test_soft_labels_and_label_validation():
    mu, tau = torch.tensor([0.7]), torch.tensor([10.0])
    hard = icrm_loss_from_posterior(mu, tau, 1.0, kl_coef=0.0).nll
    flipped = icrm_loss_from_posterior(1 - mu, tau, 0.0, kl_coef=0.0).nll
    torch.testing.assert_close(hard, flipped)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        icrm_loss_from_posterior(mu, tau, torch.tensor([1.5]))


def test_response_posterior():
    mean, var = response_posterior(torch.tensor([0.0, 2.0]), torch.tensor([0.0, 5.0]), eps=1e-3)
    assert mean[0].item() == pytest.approx(0.5)
    kappa = F.softplus(torch.tensor([0.0, 5.0])) + 1e-3
    torch.testing.assert_close(var, mean * (1 - mean) / (kappa + 1))


def test_expected_calibration_error_hand_computed():
    # Bin [0.8, 0.9): probabilities 0.8, 0.8, outcomes 1, 0 -> |0.5 - 0.8| = 0.3, weight 2/4.
    # Bin [0.2, 0.3): probabilities 0.2, 0.2, outcomes 0, 0 -> |0 - 0.2| = 0.2, weight 2/4.
    ece = expected_calibration_error(torch.tensor([0.8, 0.8, 0.2, 0.2]), torch.tensor([1, 0, 0, 0]), num_bins=10)
    assert ece == pytest.approx(0.5 * 0.3 + 0.5 * 0.2)
    assert expected_calibration_error(torch.tensor([1.0, 0.0]), torch.tensor([1, 0])) == pytest.approx(0.0)


def test_confidently_wrong_pairs_keep_learning():
    """Outside the concentration range the value is clamped but the gradient is not cut: a confidently wrong pair
    (alpha at its floor) is still pushed the right way, and an over-confident one is pulled back by the KL."""
    margin = torch.tensor([-15.0], requires_grad=True)  # chosen far below rejected: alpha = sigmoid(-15) * 12 < 1e-4
    out = icrm_loss(margin, torch.zeros(1), torch.tensor([5.0]), torch.tensor([5.0]), 1.0, kl_coef=0.1)
    assert out.alpha.item() == pytest.approx(1e-4)
    out.loss.backward()
    assert margin.grad.item() < 0  # descending the loss raises the chosen side's margin
    logits = torch.tensor([1e7, 1e7], dtype=torch.float64, requires_grad=True)  # tau = 2e7 > 1e6
    zero = torch.zeros(1, dtype=torch.float64)
    over = icrm_loss(zero, zero, logits[:1], logits[1:], 1.0, kl_coef=1.0)
    assert over.alpha.item() == pytest.approx(1e6) and over.beta.item() == pytest.approx(1e6)
    over.loss.backward()
    assert logits.grad[0].item() > 0  # the KL lowers the confidence


def test_float32_loss_is_exact_near_saturation():
    """mu = 1 - 1e-6 at tau = 1e4: beta from sigmoid(-margin) keeps the float32 loss within 1e-4 of float64."""
    margin = math.log((1 - 1e-6) / 1e-6)
    c = 5000.0  # softplus(c) + eps = 5000.001 per side: tau is about 1e4
    losses = {
        dtype: icrm_loss(
            torch.tensor([margin], dtype=dtype),
            torch.zeros(1, dtype=dtype),
            torch.tensor([c], dtype=dtype),
            torch.tensor([c], dtype=dtype),
            0.0,
            kl_coef=0.0,
        ).loss.item()
        for dtype in (torch.float32, torch.float64)
    }
    assert losses[torch.float32] == pytest.approx(losses[torch.float64], rel=1e-4)
