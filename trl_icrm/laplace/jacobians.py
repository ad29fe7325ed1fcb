# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Per-row Jacobians of a reward model in one batched backward pass, as a laplace-torch backend.

laplace-torch's GLM predictive needs J, the Jacobian of every output with respect to the posterior's weights. Its
torch.func Jacobian (`jacrev`) runs one backward pass per output over the whole batch, so a batch of n completions
costs n^2 row-passes. Here the rows of a batch never interact (each completion is its own sequence), and every weight
of the posterior is the weight or bias of an `nn.Linear` (the LoRA matrices, the score head). For such a layer the
gradient of row b's output is the sum over positions of the outer product of the layer's output gradient and its
input at row b. So one forward pass that records each layer's input, and one backward pass of the sum of the
outputs, give every row's Jacobian exactly. The cost is the MAP forward pass plus a backward pass, whatever n is.

[`PerRowJacobianGGN`] is `CurvlinopsGGN` (its curvature, fitting and everything else) with this `jacobians`. A model
with a posterior weight outside an `nn.Linear`, or run with `enable_backprop`, falls back to laplace-torch's own.
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import nn


class _CalledTwice(Exception):
    """A layer ran twice in one forward pass: its per-row gradient is not one outer product."""


def _linear_owners(model: nn.Module, names: list[str]) -> dict[str, tuple[nn.Linear, str]] | None:
    """`{parameter name: (its nn.Linear, "weight" | "bias")}` for `names`, or None if one is not a Linear's."""
    modules = dict(model.named_modules())
    owners = {}
    for name in names:
        module_name, _, attribute = name.rpartition(".")
        module = modules.get(module_name)
        if not isinstance(module, nn.Linear) or attribute not in ("weight", "bias"):
            return None
        owners[name] = (module, attribute)
    return owners


def per_row_jacobians(
    model: nn.Module, x: torch.Tensor, owners: dict[str, tuple[nn.Linear, str]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(Js (batch, outputs, parameters), f (batch, outputs))`, laplace-torch's layout, of `model(x)` with respect to
    the parameters of `owners` (in their order), for a model whose output rows depend each on its own input row
    only."""
    modules = list({id(module): module for module, _ in owners.values()}.values())
    inputs, outputs = {}, {}

    def record(module, args, output):
        if id(module) in outputs:
            raise _CalledTwice
        inputs[id(module)], outputs[id(module)] = args[0].detach(), output

    handles = [module.register_forward_hook(record) for module in modules]
    try:
        with torch.enable_grad():
            f = model(x)
            grads = torch.autograd.grad(f.sum(), [outputs[id(m)] for m in modules], allow_unused=True)
    finally:
        for handle in handles:
            handle.remove()
    grads = {id(module): grad for module, grad in zip(modules, grads, strict=True)}
    rows = f.numel()
    columns = []
    for module, attribute in owners.values():
        grad = grads[id(module)]
        if grad is None:
            columns.append(torch.zeros(rows, getattr(module, attribute).numel(), dtype=f.dtype, device=f.device))
            continue
        grad = grad.reshape(rows, -1, grad.shape[-1])
        if attribute == "bias":
            columns.append(grad.sum(1))
        else:
            activations = inputs[id(module)].reshape(rows, -1, module.in_features)
            columns.append(torch.einsum("bto,bti->boi", grad, activations).flatten(1))
    jacobian = torch.cat(columns, dim=1)  # (rows, parameters): row r = output r of f, flattened
    batch, per_item = f.shape[0], f[0].numel()
    return jacobian.reshape(batch, per_item, -1).detach(), f.detach().reshape(batch, per_item)


@functools.cache
def per_row_backend() -> type:
    """The laplace-torch backend class `PerRowJacobianGGN` (made on first use: laplace-torch is an optional extra)."""
    from laplace.curvature import CurvlinopsGGN

    class PerRowJacobianGGN(CurvlinopsGGN):
        """`CurvlinopsGGN` with [`per_row_jacobians`]: linear in the batch instead of quadratic."""

        def jacobians(self, x: Any, enable_backprop: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
            owners = None if enable_backprop or self.subnetwork_indices is not None else self._owners()
            if owners is None or not isinstance(x, torch.Tensor):
                return super().jacobians(x, enable_backprop=enable_backprop)
            try:
                return per_row_jacobians(self.model, x, owners)
            except _CalledTwice:
                self._linear_owners = None
                return super().jacobians(x, enable_backprop=enable_backprop)

        def _owners(self):
            if not hasattr(self, "_linear_owners"):
                self._linear_owners = _linear_owners(self._model, list(self.params_dict))
            return self._linear_owners

    return PerRowJacobianGGN


__all__ = ["per_row_backend", "per_row_jacobians"]
