# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""The GLM predictive of a fitted laplace-torch posterior, mean and covariance of the rewards, as laplace-torch
computes it (`Js, f = backend.jacobians(x)`, covariance `J Sigma J^T`), with one shortcut for Kronecker-factored
posteriors.

laplace-torch's `KronDecomposed.inv_square_form(J)` forms `Sigma J^T` in the weight basis (for each layer: rotate J
into the factors' eigenbases, scale by the inverse eigenvalues, rotate back) and then multiplies by J. The quadratic
form needs only the first rotation: with R = Q1^T J_layer Q2, `J Sigma J^T` is the sum over layers of
`sum_ij R_ij^2 / (l1_i l2_j + delta)` (R R'^T for two outputs). [`kron_inv_square_form`] computes that, half the
matrix products of the round trip; `tests/test_laplace.py` checks it equals laplace-torch's. Any other posterior
(diagonal, full, damped Kronecker) goes through laplace-torch's own `functional_variance`.
"""

from __future__ import annotations

from typing import Any

import torch


def glm_predictive(laplace: Any, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(mean (batch, k), covariance (batch, k, k))` of the `k` rewards per item of `x` under the linearized (GLM)
    predictive of `laplace` (a fitted laplace-torch `ParametricLaplace`)."""
    js, f = laplace.backend.jacobians(x)
    precision = laplace.posterior_precision
    covariance = kron_inv_square_form(precision, js)
    if covariance is None:
        covariance = laplace.functional_variance(js)
    return f.detach(), covariance.detach()


def kron_inv_square_form(precision: Any, js: torch.Tensor) -> torch.Tensor | None:
    """`J P^-1 J^T` per batch item, `(batch, k, k)`, for a laplace-torch `KronDecomposed` precision P and Jacobians
    `js` `(batch, k, parameters)`; None when P is not an undamped Kronecker decomposition (the caller then uses
    laplace-torch's own)."""
    from laplace.utils.matrix import KronDecomposed

    if not isinstance(precision, KronDecomposed) or precision.damping:
        return None
    batch, k, _ = js.shape
    flat = js.reshape(batch * k, -1)
    out = torch.zeros(batch, k, k, dtype=js.dtype, device=js.device)
    start = 0
    for values, vectors, delta in zip(precision.eigenvalues, precision.eigenvectors, precision.deltas, strict=True):
        if len(values) == 1:
            (q,), (eigenvalues,) = vectors, values
            size = len(eigenvalues)
            rotated = flat[:, start : start + size] @ q  # (batch k, p)
            scaled = rotated / (eigenvalues + delta)
        else:
            (q1, q2), (l1, l2) = vectors, values
            size = len(l1) * len(l2)
            block = flat[:, start : start + size].reshape(batch * k, len(l1), len(l2))
            rotated = (q1.T @ block @ q2).reshape(batch * k, -1)
            scaled = rotated / (torch.outer(l1, l2) + delta).reshape(1, -1)
        out += torch.einsum("bkp,blp->bkl", scaled.reshape(batch, k, -1), rotated.reshape(batch, k, -1))
        start += size
    return out


__all__ = ["glm_predictive", "kron_inv_square_form"]
