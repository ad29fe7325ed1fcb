# Copyright 2026 The trl-icrm developers. Licensed under the Apache License, Version 2.0.
"""Monte Carlo dropout with a fixed seed schedule: T stochastic passes, each a fixed thinned network.

- On the score head ([`head_dropout_masks`], [`mc_dropout_head_scores`]): pass t drops features of the head's input
  with the mask drawn from the generator seeded by `(seed, t)`, the same mask for every completion (a sample of the
  head's weights, `w * mask_t`), so a completion's T scores do not depend on what it is scored with, and the backbone
  runs once: the T passes are one matrix product on the pooled features.
- On the LoRA path of a PEFT model ([`lora_dropout_active`]): the adapters' `lora_dropout` modules sample in every
  pass (the rest of the model stays in eval mode), the global torch generator seeded by `(seed, t)` before pass t;
  each pass runs the whole model, and a row's masks depend on the batch it is scored in.

Example:

```python
>>> import torch
>>> from trl_icrm.uncertainty.mc_dropout import head_dropout_masks, mc_dropout_head_scores
>>> masks = head_dropout_masks(num_passes=4, size=3, p=0.5, seed=0)
>>> mc_dropout_head_scores(torch.ones(2, 3), torch.ones(3), 0.0, masks).shape
torch.Size([4, 2])

```
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def pass_seed(seed: int, t: int) -> int:
    """The seed of pass `t` of the schedule starting at `seed`."""
    return seed * 1_000_003 + t


def check_dropout(p: float, num_passes: int) -> None:
    if not 0.0 <= p < 1.0:
        raise ValueError(f"The dropout probability must be in [0, 1), got {p}.")
    if num_passes < 2:
        raise ValueError(f"MC dropout needs at least 2 passes for a variance, got {num_passes}.")


def head_dropout_masks(num_passes: int, size: int, p: float, seed: int) -> torch.Tensor:
    """`(num_passes, size)` inverted-dropout masks (0, or 1 / (1 - p)), mask t from the generator seeded by
    [`pass_seed`]`(seed, t)`."""
    check_dropout(p, num_passes)
    masks = []
    for t in range(num_passes):
        generator = torch.Generator().manual_seed(pass_seed(seed, t))
        masks.append((torch.rand(size, generator=generator) >= p).float() / (1.0 - p))
    return torch.stack(masks)


def mc_dropout_head_scores(
    features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | float | None, masks: torch.Tensor
) -> torch.Tensor:
    """Scores `(num_passes, batch)` of a one-output linear head (`weight` `(hidden,)`, `bias`) on `features`
    `(batch, hidden)` with dropout mask t on its input in pass t: `(features * mask_t) @ weight + bias`."""
    weight = weight.reshape(-1).to(features.dtype)
    scores = (masks.to(features.dtype) * weight) @ features.T
    return scores + (0.0 if bias is None else torch.as_tensor(bias, dtype=features.dtype).reshape(()))


def lora_dropout_modules(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The dropout modules of a PEFT model's LoRA layers (empty for any other model)."""
    modules = []
    for name, module in model.named_modules():
        if ".lora_dropout." in f".{name}." and isinstance(module, torch.nn.Dropout):
            modules.append(module)
    return modules


@contextlib.contextmanager
def lora_dropout_active(model: torch.nn.Module, p: float | None = None) -> Iterator[list[torch.nn.Module]]:
    """Inside the block the LoRA dropout modules sample (train mode; with probability `p` when given), the rest of the
    model as it was; restored afterwards. Raises a `ValueError` for a model without LoRA dropout."""
    modules = lora_dropout_modules(model)
    if not modules:
        raise ValueError(
            "MC dropout on the LoRA path needs a PEFT LoRA model with `lora_dropout` > 0 (a BT model saved with "
            "`trl-icrm train --method bt --no_merge_lora`); use the head's dropout (`where='head'`) otherwise."
        )
    saved = [(module.training, module.p) for module in modules]
    try:
        for module in modules:
            module.train()
            module.p = module.p if p is None else p
        if not any(module.p > 0 for module in modules):
            raise ValueError("The LoRA dropout probability is 0: pass a dropout probability > 0.")
        yield modules
    finally:
        for module, (training, probability) in zip(modules, saved, strict=True):
            module.train(training)
            module.p = probability


__all__ = [
    "check_dropout",
    "head_dropout_masks",
    "lora_dropout_active",
    "lora_dropout_modules",
    "mc_dropout_head_scores",
    "pass_seed",
]
